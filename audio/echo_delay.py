"""How late the microphone hears what the speaker played: the echo delay, tracked.

An echo canceller finds the echo only in a limited span after its reference
(WebRTC AEC3: about 0.45 s, measured).  A real sound path can be longer, and
it moves: a busy machine that fails to feed its sound card in time (an
underrun) puts silence into the speaker's stream, and from then on the
microphone hears every reply sample later.  Measured through PulseAudio on a
loaded 2-core machine: 180 ms growing to more than a second in steps, within
half a minute.

`EchoDelayTracker` measures the delay from the signals themselves: every
tenth of a second in which the speaker played something, the last 0.4 s of
microphone audio is cross-correlated with the last 2.4 s of what was played
(GCC-PHAT at 8 kHz; the room's reflections are part of the peak, not rivals
to it); a delay is accepted when two measurements in a row agree or one
stands out clearly.  `DelayCompensatedEchoCanceller` holds its canceller's
reference back so that the canceller keeps seeing the echo where it first
found it (or 100 ms after the reference, when that was beyond its reach),
however long the device's path grows.  Drifts of a few milliseconds are left
to the canceller, which follows them itself; after a larger move it starts
afresh.  On recordings through PulseAudio under load (two stalls each, about
30 s), this cut the 100 ms windows with echo above 40 dB from 57-178 to
12-39 per recording (eight recordings).
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np

from audio.analysis_pair import ANALYSIS_RATE, AnalysisPair
from audio.echo_cancel import EchoCanceller

logger = logging.getLogger(__name__)


class EchoDelayTracker:
    """Feed it mic and played blocks; `delay_s` is the last echo delay
    measured with confidence (None until the first)."""

    def __init__(
        self,
        sample_rate: int,
        max_delay_s: float = 2.0,
        window_s: float = 0.4,
        hop_s: float = 0.1,
        min_confidence: float = 3.0,
        sure_confidence: float = 6.0,
        agreement_s: float = 0.004,
    ) -> None:
        self.sample_rate = sample_rate
        self.max_lag = int(max_delay_s * ANALYSIS_RATE)
        self.window = int(window_s * ANALYSIS_RATE)
        self.hop = int(hop_s * ANALYSIS_RATE)
        self.min_confidence = min_confidence
        self.sure_confidence = sure_confidence
        self.agreement = max(1, int(agreement_s * ANALYSIS_RATE))
        self.reflections_s = 0.06
        self._signals = AnalysisPair(sample_rate, keep_mic=self.window, keep_played=self.max_lag + self.window)
        self._since_last = 0
        self._recent: deque[int] = deque(maxlen=2)
        self.delay_s: float | None = None

    def push(self, mic: np.ndarray, played: np.ndarray) -> bool:
        """Add one block pair (same length, the caller's rate); True when a
        new delay was accepted."""
        added, _ = self._signals.push(mic, played)
        self._since_last += len(added)
        if self._since_last < self.hop or len(self._signals.mic) < self.window:
            return False
        self._since_last = 0
        measured = self._measure()
        if measured is None:
            return False
        lag, confidence = measured
        self._recent.append(lag)
        agreed = len(self._recent) == 2 and abs(self._recent[0] - self._recent[1]) <= self.agreement
        if not (agreed or confidence >= self.sure_confidence):
            return False
        self.delay_s = lag / ANALYSIS_RATE
        return True

    def _measure(self) -> tuple[int, float] | None:
        """The lag (analysis samples) of the played signal's strongest echo in
        the last mic window and how clearly it stands out, or None when the
        window shows no clear echo (nothing played, or the mic hears
        something else)."""
        mic = self._signals.mic[-self.window :]
        played = self._signals.played[-(self.max_lag + self.window) :]
        if len(played) < self.max_lag + self.window:  # the first seconds: nothing was played before
            played = np.concatenate([np.zeros(self.max_lag + self.window - len(played), np.float32), played])
        if np.sqrt(np.mean(played[-(self.window + self.max_lag // 2) :] ** 2)) < 30.0:
            return None  # the speaker was (nearly) silent
        if np.sqrt(np.mean(mic**2)) < 3.0:
            return None
        size = 1 << int(np.ceil(np.log2(len(mic) + len(played))))
        cross = np.fft.rfft(mic, size) * np.conj(np.fft.rfft(played, size))
        correlation = np.fft.irfft(cross / (np.abs(cross) + 1e-9), size)
        # mic[i] hears played[max_lag + i - lag]: that pairing sits at index lag - max_lag.
        scores = correlation[(np.arange(self.max_lag) - self.max_lag) % size]
        lag = int(np.argmax(scores))
        # The room's reflections follow the direct path for tens of ms: they
        # are the same echo, not a rival delay.
        before, after = lag - 4 * self.agreement, lag + int(self.reflections_s * ANALYSIS_RATE)
        sidelobes = np.concatenate([scores[: max(0, before)], scores[after + 1 :]])
        confidence = float(scores[lag] / (np.max(np.abs(sidelobes)) + 1e-12))
        if confidence < self.min_confidence:
            return None
        return lag, confidence


class DelayCompensatedEchoCanceller:
    """An echo canceller behind a delay line that follows the measured echo delay.

    The reference is held back so that the canceller always sees the echo at
    the same delay after its reference (the first one measured, or `margin_s`
    when that was beyond the canceller's `reach_s`), however long the
    device's path grows.  Same interface as `EchoCanceller`.
    """

    def __init__(
        self,
        canceller: EchoCanceller,
        margin_s: float = 0.1,
        tolerance_s: float = 0.01,
        reach_s: float = 0.35,
        max_delay_s: float = 2.0,
    ) -> None:
        self.canceller = canceller
        self.sample_rate = canceller.sample_rate
        self.engine = canceller.engine
        self.margin_s = margin_s
        self.tolerance_s = tolerance_s
        self.reach_s = reach_s  # a delay the canceller surely finds by itself
        self.target_s: float | None = None  # where the canceller sees the echo
        self.tracker = EchoDelayTracker(self.sample_rate, max_delay_s=max_delay_s)
        self.held_back = 0  # samples the reference is delayed by
        self._history = np.zeros(int(max_delay_s * self.sample_rate), dtype=np.int16)
        self.moves = 0  # how often the reference was moved (each one makes the canceller re-settle)
        self.measurements = 0  # echo delays accepted so far: the path was seen, moved or not

    @property
    def latency_samples(self) -> int:
        return self.canceller.latency_samples

    @property
    def delay_s(self) -> float | None:
        return self.tracker.delay_s

    def process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        mic = np.asarray(mic, dtype=np.int16).reshape(-1)
        played = np.asarray(played, dtype=np.int16).reshape(-1)[: mic.size]
        if played.size < mic.size:
            played = np.concatenate([played, np.zeros(mic.size - played.size, dtype=np.int16)])
        if self.tracker.push(mic, played):
            self.measurements += 1
            self._follow(self.tracker.delay_s)
        self._history = np.concatenate([self._history[mic.size :], played])
        end = len(self._history) - self.held_back
        return self.canceller.process(mic, self._history[end - mic.size : end])

    def _follow(self, delay_s: float) -> None:
        """Keep the canceller seeing the echo where it first found it (or
        `margin_s` after the reference, if the first delay was beyond its
        reach); drifts within `tolerance_s` are left to the canceller."""
        if self.target_s is None:
            self.target_s = delay_s if delay_s <= self.reach_s else self.margin_s
        seen_s = delay_s - self.held_back / self.sample_rate
        if abs(seen_s - self.target_s) <= self.tolerance_s:
            return
        held_back = int(max(0.0, delay_s - self.target_s) * self.sample_rate)
        held_back = min(held_back, len(self._history) - self.sample_rate // 10)
        if held_back == self.held_back:
            return
        self.held_back = held_back
        self.moves += 1
        # A fresh canceller learns the room again within a second; the old one,
        # half adapted to the moved path, took up to four (measured).
        self.canceller = type(self.canceller)(self.sample_rate)
        logger.debug(
            "echo delay %.0f ms: reference held back %.0f ms", delay_s * 1000, held_back * 1000 / self.sample_rate
        )
