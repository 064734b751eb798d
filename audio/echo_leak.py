"""How much of the cleaned microphone audio is still the assistant's own voice.

An echo canceller can fail for a moment: after a long stretch of the user
talking over the reply (double talk, when its filter may have adapted to the
wrong thing), after the sound path moved unseen, on a core so busy that the
sound card's timing wobbles.  What leaks then is the reply itself, garbled
by the canceller, and Whisper hears words in it ("I'm dead." for "The
capital of France"): a sound over the reply that would stop it.  Measured in
local mode on one loaded core: the echo test's answer stopped itself so in
two runs of six.

The leak is recognisable without a model: it is the played audio, delayed
by the echo delay the tracker measured (audio/echo_delay.py).  `EchoLeakMeter`
gives, for each mic block, the normalised correlation between the last
`window_s` of cleaned audio and the played audio around that delay (within
`search_s`, so a small drift or the room's first reflections count too):
near 0 for a user speaking over a well-cancelled echo (unrelated signals),
towards 1 when the cleaned audio is the echo itself.  A plain correlation,
not a whitened one as the tracker uses: the question is what share of the
cleaned audio's energy the echo is, not whether a trace of it can be found.
"""

from __future__ import annotations

import numpy as np
import soxr

ANALYSIS_RATE = 8000
QUIET_RMS = 30.0  # int16 RMS: a window quieter than this holds nothing to judge


class EchoLeakMeter:
    """Feed it each cleaned mic block, the block played meanwhile and the echo
    delay known then; `leak` is the last measure (None when nothing can be
    said: the speaker silent, the mic quiet, or no delay measured yet)."""

    def __init__(
        self,
        sample_rate: int,
        latency_s: float = 0.0,
        window_s: float = 0.25,
        search_s: float = 0.02,
        max_delay_s: float = 2.0,
    ) -> None:
        """`latency_s`: how much later the canceller's output comes than its
        input (the echo sits that much further behind the played audio)."""
        self.latency_s = latency_s
        self.window = int(window_s * ANALYSIS_RATE)
        self.search = int(search_s * ANALYSIS_RATE)
        self.max_lag = int(max_delay_s * ANALYSIS_RATE)
        self._cleaned_resampler = soxr.ResampleStream(sample_rate, ANALYSIS_RATE, 1, dtype="float32")
        self._played_resampler = soxr.ResampleStream(sample_rate, ANALYSIS_RATE, 1, dtype="float32")
        self._cleaned = np.zeros(0, dtype=np.float32)
        self._played = np.zeros(0, dtype=np.float32)
        self._last_cleaned = self._last_played = 0.0
        self.leak: float | None = None

    @staticmethod
    def _differenced(samples: np.ndarray, before: float) -> tuple[np.ndarray, float]:
        if not len(samples):
            return samples, before
        return np.diff(samples, prepend=np.float32(before)), float(samples[-1])

    def push(self, cleaned: np.ndarray, played: np.ndarray, delay_s: float | None) -> float | None:
        """Add one block pair (same length; `cleaned` is the canceller's output
        for the mic block recorded while `played` went out) and measure."""
        cleaned8 = self._cleaned_resampler.resample_chunk(np.asarray(cleaned, dtype=np.float32))
        played8 = self._played_resampler.resample_chunk(np.asarray(played, dtype=np.float32))
        # The first difference tilts speech's spectrum towards flat: unrelated voices share
        # their low harmonics at some lag, and would correlate there.
        cleaned8, self._last_cleaned = self._differenced(cleaned8, self._last_cleaned)
        played8, self._last_played = self._differenced(played8, self._last_played)
        size = min(len(cleaned8), len(played8))
        keep = self.max_lag + self.search + self.window
        self._cleaned = np.concatenate([self._cleaned, cleaned8[:size]])[-self.window :]
        self._played = np.concatenate([self._played, played8[:size]])[-keep:]
        self.leak = self._measure(delay_s)
        return self.leak

    def _measure(self, delay_s: float | None) -> float | None:
        if delay_s is None or len(self._cleaned) < self.window:
            return None
        cleaned = self._cleaned.astype(np.float64)
        cleaned_energy = float(np.dot(cleaned, cleaned))
        if cleaned_energy < QUIET_RMS**2 * self.window:
            return None
        delay = round((delay_s + self.latency_s) * ANALYSIS_RATE)
        # cleaned[i] (the window's i-th sample, the last one `now`) hears played[now - lag + i]
        # for lags delay - search ... delay + search.
        end = len(self._played) - max(0, delay - self.search)
        start = len(self._played) - (delay + self.search) - self.window
        if start < 0:
            return None
        played = self._played[start:end].astype(np.float64)
        if np.sqrt(np.mean(played**2)) < QUIET_RMS:
            return None  # the speaker was silent: nothing of it can be in the mic
        products = np.correlate(played, cleaned, mode="valid")  # one per lag
        squares = np.concatenate([[0.0], np.cumsum(played**2)])
        energies = squares[self.window :] - squares[: -self.window]
        correlation = np.abs(products) / np.sqrt(np.maximum(energies, 1e-9) * cleaned_energy)
        return float(np.max(correlation))
