"""The mic and the played audio side by side at 8 kHz, for measuring the echo.

The echo-delay tracker (audio/echo_delay.py) and the leak meter
(audio/echo_leak.py) both compare what the microphone heard with what the
speaker played, over the last second or two: at 8 kHz (speech's energy is
below 4 kHz, and the correlations cost a quarter of 16 kHz's), each through
its own streaming resampler so block boundaries leave no clicks, both kept
in step and trimmed to the spans they look at.
"""

from __future__ import annotations

import numpy as np
import soxr

ANALYSIS_RATE = 8000


class AnalysisPair:
    """Feed it equal-length (mic, played) blocks at the caller's rate; `mic`
    and `played` hold the last `keep_mic` and `keep_played` samples at
    `ANALYSIS_RATE`, the newest last and at the same moment in both."""

    def __init__(self, sample_rate: int, keep_mic: int, keep_played: int) -> None:
        self.keep_mic, self.keep_played = keep_mic, keep_played
        self._mic_resampler = soxr.ResampleStream(sample_rate, ANALYSIS_RATE, 1, dtype="float32")
        self._played_resampler = soxr.ResampleStream(sample_rate, ANALYSIS_RATE, 1, dtype="float32")
        self.mic = np.zeros(0, dtype=np.float32)
        self.played = np.zeros(0, dtype=np.float32)

    def push(self, mic: np.ndarray, played: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add a block pair; returns the new samples of each (equal length)."""
        mic8 = self._mic_resampler.resample_chunk(np.asarray(mic, dtype=np.float32))
        played8 = self._played_resampler.resample_chunk(np.asarray(played, dtype=np.float32))
        size = min(len(mic8), len(played8))  # equal streams through equal resamplers
        mic8, played8 = mic8[:size], played8[:size]
        self.mic = np.concatenate([self.mic, mic8])[-self.keep_mic :]
        self.played = np.concatenate([self.played, played8])[-self.keep_played :]
        return mic8, played8
