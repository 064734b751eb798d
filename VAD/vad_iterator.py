"""End-of-turn state machine over per-window speech probabilities.

Kept free of any model so it can be tested with scripted probability
timelines: feed windows of audio with the probability the model gave each,
get back a finished utterance when the speaker has been quiet long enough.

States: idle -> speaking (probability >= threshold) -> trailing silence
(probability < threshold - 0.15, Silero's hysteresis) -> idle again once the
silence lasts `min_silence_ms`; speech resuming during the trailing silence
goes back to speaking.  `speech_pad_ms` of audio before the start and after
the end is kept, so the first and last phonemes are not clipped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

HYSTERESIS = 0.15


@dataclass
class Utterance:
    audio: np.ndarray  # float32, pads included
    speech_ms: float  # voiced span, pads excluded
    end_sample: int  # stream position of the last voiced sample
    forced: bool = False  # cut at max_speech_ms rather than by silence
    start_sample: int = 0  # stream position where the speech began
    end_position: int = 0  # stream position where `audio` ends


class VADIterator:
    def __init__(
        self,
        threshold: float = 0.3,
        sample_rate: int = 16000,
        min_silence_ms: int = 300,
        min_speech_ms: int = 500,
        max_speech_ms: float = float("inf"),
        speech_pad_ms: int = 500,
    ) -> None:
        self.threshold = threshold
        self.neg_threshold = max(threshold - HYSTERESIS, 0.01)
        self.sample_rate = sample_rate
        per_ms = sample_rate / 1000.0
        self.min_silence_samples = int(min_silence_ms * per_ms)
        self.min_speech_samples = int(min_speech_ms * per_ms)
        self.max_speech_samples = max_speech_ms * per_ms
        self.pad_samples = int(speech_pad_ms * per_ms)
        self.reset()

    def reset(self) -> None:
        self.position = 0  # samples seen so far
        self.speaking = False
        self.in_silence = False
        self._continuation = False
        self.speech_start = 0
        self.last_voiced_end = 0
        self._pre_roll: deque[np.ndarray] = deque()
        self._pre_roll_samples = 0
        self._windows: list[np.ndarray] = []
        self._prefix: Utterance | None = None

    def join_previous(self, previous: Utterance) -> None:
        """The speech just begun continues `previous` (an utterance already
        handed on, whose reply the user has not heard yet): the utterance in
        progress will hold both, as one turn.  Pre-roll audio that `previous`
        already holds is not repeated."""
        overlap = previous.end_position - (self.speech_start - self._windows_samples_before_start())
        if overlap > 0 and self._windows:
            audio = np.concatenate(self._windows)
            self._windows = [audio[min(overlap, len(audio)) :]]
        self._prefix = previous
        self.speech_start = previous.start_sample

    def _windows_samples_before_start(self) -> int:
        """Pre-roll samples in front of the speech start, in `_windows`."""
        return sum(len(window) for window in self._windows) - (self.position - self.speech_start)

    def _with_prefix(self, audio: np.ndarray) -> np.ndarray:
        if self._prefix is None:
            return audio
        return np.concatenate([self._prefix.audio, audio])

    def __call__(self, window: np.ndarray, probability: float) -> Utterance | None:
        """Feed one window with its speech probability; returns an utterance
        when this window ends one."""
        start = self.position
        self.position += len(window)
        if not self.speaking:
            if probability >= self.threshold:
                self.speaking = True
                self.in_silence = False
                self.speech_start = start
                self.last_voiced_end = self.position
                self._windows = list(self._pre_roll)
                self._windows.append(window)
                self._clear_pre_roll()
            else:
                self._keep_pre_roll(window)
            return None

        self._windows.append(window)
        if probability >= self.threshold:
            self.last_voiced_end = self.position
            self.in_silence = False
        elif probability < self.neg_threshold:
            self.in_silence = True
        elif not self.in_silence:
            # Hysteresis: a dip between the two thresholds neither starts
            # the trailing silence nor ends one already running.
            self.last_voiced_end = self.position
        if self.position - self.speech_start >= self.max_speech_samples:
            return self._finish(forced=True)
        if self.position - self.last_voiced_end >= self.min_silence_samples:
            return self._finish(forced=False)
        return None

    @property
    def trailing_silence_samples(self) -> int:
        """How long the speaker has been quiet, while a turn is in progress."""
        if not self.speaking or not self.in_silence:
            return 0
        return self.position - self.last_voiced_end

    def peek(self) -> Utterance | None:
        """The utterance as it would end now, without ending it: what a
        speculative transcription works on while the VAD still waits."""
        if not self.speaking or not self._windows:
            return None
        speech_samples = self.last_voiced_end - self.speech_start
        if speech_samples < self.min_speech_samples and not (self._continuation or self._prefix):
            return None
        audio = np.concatenate(self._windows)
        excess = max(0, (self.position - self.last_voiced_end) - self.pad_samples)
        if excess:
            audio = audio[: len(audio) - excess]
        return Utterance(
            audio=self._with_prefix(audio).astype(np.float32, copy=False),
            speech_ms=speech_samples * 1000.0 / self.sample_rate,
            end_sample=self.last_voiced_end,
            start_sample=self.speech_start,
            end_position=self.position - excess,
        )

    def audio_so_far(self) -> np.ndarray:
        """The speech in progress as it stands, with its pre-roll (empty when
        not speaking)."""
        if not self.speaking or not self._windows:
            return np.zeros(0, np.float32)
        return np.concatenate(self._windows).astype(np.float32, copy=False)

    @property
    def voiced_samples(self) -> int:
        """Voiced span of the speech in progress (0 when not speaking)."""
        return self.last_voiced_end - self.speech_start if self.speaking else 0

    def discard(self) -> None:
        """Forget the speech in progress (the client cleared its input)."""
        self.speaking = False
        self.in_silence = False
        self._continuation = False
        self._windows = []
        self._prefix = None

    def holds_speech(self) -> bool:
        """Whether ending the speech in progress now would give an utterance
        (not a sound too short to be speech, which `flush` drops)."""
        speech_samples = self.last_voiced_end - self.speech_start
        continuation = self._continuation or self._prefix is not None
        return self.speaking and speech_samples > 0 and (speech_samples >= self.min_speech_samples or continuation)

    def flush(self) -> Utterance | None:
        """End of input: whatever speech is in progress ends here."""
        if not self.speaking:
            return None
        return self._finish(forced=False)

    def _finish(self, forced: bool) -> Utterance | None:
        speech_samples = self.last_voiced_end - self.speech_start
        audio = np.concatenate(self._windows) if self._windows else np.zeros(0, np.float32)
        # Trim trailing silence beyond the pad; `audio` ends at `self.position`.
        excess = max(0, (self.position - self.last_voiced_end) - self.pad_samples)
        if excess:
            audio = audio[: len(audio) - excess]
        end_sample = self.last_voiced_end
        start_sample = self.speech_start
        end_position = self.position - excess
        is_continuation = self._continuation or self._prefix is not None
        audio = self._with_prefix(audio)
        self._prefix = None
        self.speaking = False
        self._continuation = False
        self._windows = []
        if forced:
            # Speech goes on: the next segment starts right here, and however
            # short its tail turns out, it is speech, not noise.
            self.speaking = True
            self._continuation = True
            self.speech_start = self.position
            self.last_voiced_end = self.position
        if speech_samples <= 0 or (speech_samples < self.min_speech_samples and not is_continuation):
            return None
        return Utterance(
            audio=audio.astype(np.float32, copy=False),
            speech_ms=speech_samples * 1000.0 / self.sample_rate,
            end_sample=end_sample,
            forced=forced,
            start_sample=start_sample,
            end_position=end_position,
        )

    def _keep_pre_roll(self, window: np.ndarray) -> None:
        self._pre_roll.append(window)
        self._pre_roll_samples += len(window)
        while self._pre_roll and self._pre_roll_samples - len(self._pre_roll[0]) >= self.pad_samples:
            self._pre_roll_samples -= len(self._pre_roll.popleft())

    def _clear_pre_roll(self) -> None:
        self._pre_roll.clear()
        self._pre_roll_samples = 0
