"""Realtime API audio formats: base64 PCM16 at 24 kHz, or G.711 (µ-law, A-law) at 8 kHz.

The models run at 16 kHz; each connection converts its input to that rate
and its replies to the client's rate with streaming resamplers, so pieces of
any size join without clicks.  G.711 is the telephone codec: 8-bit
logarithmic samples, coded here with numpy from the ITU-T formulas.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

from audio.pcm import int16_to_float
from audio.stream_resample import StreamResampler

PCM_RATE = 24000  # the API's only PCM rate
G711_RATE = 8000
FORMAT_RATES = {"audio/pcm": PCM_RATE, "audio/pcmu": G711_RATE, "audio/pcma": G711_RATE}


class AudioFormatError(ValueError):
    """Input audio the server cannot take; the message says why."""


def _mulaw_encode(samples: np.ndarray) -> np.ndarray:
    bias, clip = 0x84, 32635
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), clip) + bias
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def _mulaw_decode(codes: np.ndarray) -> np.ndarray:
    u = ~codes.astype(np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = (((u & 0x0F) << 3) + 0x84) << exponent
    return np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


def _alaw_encode(samples: np.ndarray) -> np.ndarray:
    x = samples.astype(np.int32) >> 3  # A-law codes 13-bit samples
    sign = np.where(x >= 0, 0x80, 0)
    magnitude = np.minimum(np.where(x >= 0, x, -x - 1), 0x0FFF)
    exponent = np.where(magnitude < 32, 0, np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32) - 4)
    mantissa = np.where(exponent == 0, magnitude >> 1, magnitude >> exponent) & 0x0F
    return ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8)


def _alaw_decode(codes: np.ndarray) -> np.ndarray:
    a = codes.astype(np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)


def decode_base64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise AudioFormatError("audio is not valid base64") from None


class InputAudio:
    """One connection's microphone: client format in, int16 at the pipeline's rate out."""

    def __init__(self, audio_format: str, pipeline_rate: int) -> None:
        self.format = audio_format
        self._resampler = StreamResampler(FORMAT_RATES[audio_format], pipeline_rate)

    def decode(self, payload: bytes) -> np.ndarray:
        if self.format == "audio/pcm":
            if len(payload) % 2:
                raise AudioFormatError(
                    f"audio/pcm is 16-bit samples: {len(payload)} bytes is not a whole number of samples"
                )
            samples = np.frombuffer(payload, dtype="<i2")
        else:
            codes = np.frombuffer(payload, dtype=np.uint8)
            samples = _mulaw_decode(codes) if self.format == "audio/pcmu" else _alaw_decode(codes)
        return self._resampler.push(int16_to_float(samples))


class OutputAudio:
    """One reply's audio: int16 at the TTS rate in, the client's format out.

    One per response, so the resampler's state never carries one reply's
    tail into the next."""

    def __init__(self, audio_format: str, source_rate: int) -> None:
        self.format = audio_format
        self.rate = FORMAT_RATES[audio_format]
        self._resampler = StreamResampler(source_rate, self.rate)

    def encode(self, samples: np.ndarray) -> bytes:
        return self._code(self._resampler.push(int16_to_float(samples)))

    def flush(self) -> bytes:
        return self._code(self._resampler.flush())

    def _code(self, samples: np.ndarray) -> bytes:
        if self.format == "audio/pcm":
            return samples.astype("<i2").tobytes()
        coded = _mulaw_encode(samples) if self.format == "audio/pcmu" else _alaw_encode(samples)
        return coded.tobytes()
