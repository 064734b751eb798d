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

from audio.analysis_pair import ANALYSIS_RATE, AnalysisPair

# RMS of the first-differenced 8 kHz signal (int16 scale; speech's differenced level is
# some 10-16 dB below its own): a window quieter than this holds nothing to judge.
QUIET_RMS = 30.0


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
        # One sample more than measured: the first difference eats one.
        self._signals = AnalysisPair(
            sample_rate,
            keep_mic=self.window + 1,
            keep_played=self.max_lag + round(latency_s * ANALYSIS_RATE) + self.search + self.window + 1,
        )
        self.leak: float | None = None

    def push(self, cleaned: np.ndarray, played: np.ndarray, delay_s: float | None) -> float | None:
        """Add one block pair (same length; `cleaned` is the canceller's output
        for the mic block recorded while `played` went out) and measure."""
        self._signals.push(cleaned, played)
        self.leak = self._measure(delay_s)
        return self.leak

    def _measure(self, delay_s: float | None) -> float | None:
        if delay_s is None or len(self._signals.mic) <= self.window:
            return None
        # The first difference tilts speech's spectrum towards flat: unrelated voices share
        # their low harmonics at some lag, and would correlate there.
        cleaned = np.diff(self._signals.mic.astype(np.float64))
        history = np.diff(self._signals.played.astype(np.float64))
        cleaned_energy = float(np.dot(cleaned, cleaned))
        if cleaned_energy < QUIET_RMS**2 * self.window:
            return None
        delay = round((delay_s + self.latency_s) * ANALYSIS_RATE)
        # cleaned[i] (the window's i-th sample, the last one `now`) hears played[now - lag + i]
        # for lags delay - search ... delay + search.
        end = len(history) - max(0, delay - self.search)
        start = len(history) - (delay + self.search) - self.window
        if start < 0:
            return None
        played = history[start:end]
        if np.sqrt(np.mean(played**2)) < QUIET_RMS:
            return None  # the speaker was silent: nothing of it can be in the mic
        products = np.correlate(played, cleaned, mode="valid")  # one per lag
        squares = np.concatenate([[0.0], np.cumsum(played**2)])
        energies = squares[self.window :] - squares[: -self.window]
        correlation = np.abs(products) / np.sqrt(np.maximum(energies, 1e-9) * cleaned_energy)
        return float(np.max(correlation))
