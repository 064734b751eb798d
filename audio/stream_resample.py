"""Resampling for audio that arrives in pieces: streamed TTS output, microphone blocks.

`audio.pcm.resample` treats each call as a whole signal, so resampling
consecutive pieces of one stream separately puts a small edge transient
(a click) at every piece boundary.  This keeps soxr's filter state across the
pieces of one stream instead, so the joined output equals resampling the
whole stream at once; `flush()` returns the filter's tail at the end.
"""

from __future__ import annotations

import numpy as np
import soxr

from audio.pcm import float_to_int16, resample


class StreamResampler:
    """Pieces at `from_rate` in (float32 in [-1, 1], or int16 with
    `input_dtype="int16"`), int16 pieces at `to_rate` out."""

    def __init__(self, from_rate: int, to_rate: int, input_dtype: str = "float32") -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self.input_dtype = np.dtype(input_dtype)
        self._stream = (
            None
            if from_rate == to_rate
            else soxr.ResampleStream(from_rate, to_rate, 1, dtype=self.input_dtype.name, quality="HQ")
        )

    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=self.input_dtype).reshape(-1)
        if self._stream is not None:
            samples = self._stream.resample_chunk(samples, last=False)
        return _as_int16(samples)

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        return _as_int16(self._stream.resample_chunk(np.zeros(0, dtype=self.input_dtype), last=True))


def _as_int16(samples: np.ndarray) -> np.ndarray:
    return samples if samples.dtype == np.int16 else float_to_int16(samples)


def resample_to_int16(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """One whole utterance: float in [-1, 1] at `from_rate` -> int16 at `to_rate`."""
    return float_to_int16(resample(np.asarray(samples, dtype=np.float32).reshape(-1), from_rate, to_rate))
