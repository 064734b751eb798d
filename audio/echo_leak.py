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

The echo can also move before the tracker has measured where to (it needs
two agreeing measures, 0.2 s at least): an underrun delays every later echo
by its length, the canceller still looks where the echo was, and the whole
echo comes through, from a place the meter did not look either.  Seen in
local mode on a loaded machine: the path moved 215 -> 305 ms just as a reply
went on, Whisper heard "offered" in what leaked, and the meter, still at
215 ms, measured 0.01-0.03 where 0.5-0.6 sat 108 ms further on; the reply
stopped itself.  So the meter also looks `drift_s` either side of the delay,
with a higher bar (`DRIFTED_LEAK`: more lags give chance more room; a user
talking over the reply measured at most 0.23 there in the same runs).
"""

from __future__ import annotations

import numpy as np

from audio.analysis_pair import ANALYSIS_RATE, AnalysisPair

# RMS of the first-differenced 8 kHz signal (int16 scale; speech's differenced level is
# some 10-16 dB below its own): a window quieter than this holds nothing to judge.
QUIET_RMS = 30.0
# How closely the cleaned audio must follow the played audio at a lag away from
# the measured delay to count as the echo having moved there.
DRIFTED_LEAK = 0.4


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
        drift_s: float = 0.3,
        max_delay_s: float = 2.0,
    ) -> None:
        """`latency_s`: how much later the canceller's output comes than its
        input (the echo sits that much further behind the played audio)."""
        self.latency_s = latency_s
        self.window = int(window_s * ANALYSIS_RATE)
        self.search = int(search_s * ANALYSIS_RATE)
        self.drift = max(self.search, int(drift_s * ANALYSIS_RATE))
        self.max_lag = int(max_delay_s * ANALYSIS_RATE)
        # One sample more than measured: the first difference eats one.
        self._signals = AnalysisPair(
            sample_rate,
            keep_mic=self.window + 1,
            keep_played=self.max_lag + round(latency_s * ANALYSIS_RATE) + self.drift + self.window + 1,
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
        # No echo comes sooner than the canceller's own latency after its sound.
        earliest = max(delay - self.drift, round(self.latency_s * ANALYSIS_RATE))
        # One correlation over every lag either search looks at: the near one lies inside the drift one.
        lowest = max(0, min(delay - self.search, earliest))
        highest = len(history) - self.window  # the furthest lag with a whole window of history
        if highest < lowest:
            return None
        by_lag = self._correlations(history, cleaned, cleaned_energy, lowest, min(delay + self.drift, highest))

        def best(low: int, high: int) -> float | None:
            """The highest correlation at lags low..high; None where the history is too short for
            them or the speaker played nothing at any of them."""
            if high > highest:
                return None
            values = by_lag[max(0, low) - lowest : high - lowest + 1]
            values = values[~np.isnan(values)]
            return float(np.max(values)) if values.size else None

        near = best(delay - self.search, delay + self.search)
        drifted = best(earliest, delay + self.drift)
        if drifted is not None and drifted >= DRIFTED_LEAK:
            return max(near or 0.0, drifted)
        return near  # None: the speaker was silent around the delay, nothing of it can be in the mic

    def _correlations(
        self, history: np.ndarray, cleaned: np.ndarray, cleaned_energy: float, low: int, high: int
    ) -> np.ndarray:
        """The normalised correlation of the cleaned window with the played
        audio at each lag `low`..`high` (analysis samples back; index 0 is
        `low`), NaN at lags where the speaker played nothing."""
        # cleaned[i] (the window's i-th sample, the last one `now`) hears played[now - lag + i].
        played = history[len(history) - high - self.window : len(history) - low]
        # One product per lag, the highest lag first (np.correlate's "valid"), through the FFT:
        # the drift search spans thousands of lags, at every mic block.
        size = 1 << int(np.ceil(np.log2(len(played) + self.window)))
        spectrum = np.fft.rfft(played, size) * np.conj(np.fft.rfft(cleaned, size))
        products = np.fft.irfft(spectrum, size)[: len(played) - self.window + 1]
        squares = np.concatenate([[0.0], np.cumsum(played**2)])
        energies = squares[self.window :] - squares[: -self.window]
        audible = energies >= QUIET_RMS**2 * self.window
        correlation = np.full(len(products), np.nan)
        correlation[audible] = np.abs(products[audible]) / np.sqrt(energies[audible] * cleaned_energy)
        return correlation[::-1]
