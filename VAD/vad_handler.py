"""Voice activity detection: audio chunks in, one SpeechSegment per user turn out.

Silero VAD is loaded from the `silero-vad` wheel (its weights ship inside it;
`torch.hub` is never used).  Incoming chunks of any size are re-cut into the
512-sample windows Silero expects, scored, and fed to the end-of-turn state
machine in `vad_iterator.py`.

Half duplex: the VAD clears `should_listen` when it hands a turn on, and the
output stage sets it again once the reply is out.  While it is clear, the
audio sources hold back (file mode) or drop (microphone, socket) their input,
so the assistant never answers its own voice.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator

import numpy as np
import torch

from baseHandler import BaseHandler
from utils.audio import int16_to_float, resample
from utils.messages import AudioChunk, Session, SpeechSegment, Turn
from VAD.vad_iterator import VADIterator

logger = logging.getLogger(__name__)


def load_silero() -> torch.jit.ScriptModule:
    from silero_vad import load_silero_vad

    return load_silero_vad()


class VADHandler(BaseHandler):
    accepts = (AudioChunk,)

    def setup(
        self,
        should_listen: threading.Event,
        thresh: float = 0.3,
        sample_rate: int = 16000,
        min_silence_ms: int = 300,
        min_speech_ms: int = 500,
        max_speech_ms: float = float("inf"),
        speech_pad_ms: int = 500,
        session: Session | None = None,
        speculative_stt_ms: int = 0,
        speculative_reply: bool = False,
    ) -> None:
        self.should_listen = should_listen
        self.session = session
        self.sample_rate = sample_rate
        self.window = 512 if sample_rate == 16000 else 256
        self.model = load_silero()
        self.iterator = VADIterator(
            threshold=thresh,
            sample_rate=sample_rate,
            min_silence_ms=min_silence_ms,
            min_speech_ms=min_speech_ms,
            max_speech_ms=max_speech_ms,
            speech_pad_ms=speech_pad_ms,
        )
        self._pending = np.zeros(0, dtype=np.float32)
        # (stream position after the chunk, arrival time) of recent chunks, to
        # find when the last voiced sample actually arrived.
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=2048)
        self._received = 0
        # Send a provisional segment this long into the end-of-turn silence
        # (0: never), so the STT can start before the turn is over.
        self.speculate_after = int(speculative_stt_ms * sample_rate / 1000) if speculative_stt_ms > 0 else None
        # ...and open a speculative turn with it, so the LLM and TTS start too.
        self.speculative_reply = speculative_reply
        self._speculated: tuple[int, int] | None = None
        self._speculative_turn: Turn | None = None
        self._cancelled_speculations = 0  # in the turn under way, for its metrics

    def speech_probability(self, window: np.ndarray) -> float:
        with torch.inference_mode():
            return float(self.model(torch.from_numpy(window), self.sample_rate))

    def on_reset(self) -> None:
        self.iterator.reset()
        self.model.reset_states()
        self._pending = np.zeros(0, dtype=np.float32)
        self._arrivals.clear()
        self._received = 0
        self._speculated = None
        self._cancel_speculation()
        self._cancelled_speculations = 0

    def process(self, message: AudioChunk) -> Iterator[SpeechSegment]:
        samples = message.samples
        if message.sample_rate != self.sample_rate:
            samples = resample(samples, message.sample_rate, self.sample_rate)
        self._received += len(samples)
        self._arrivals.append((self._received, message.received_at))
        self._pending = np.concatenate([self._pending, int16_to_float(samples)])
        usable = len(self._pending) - len(self._pending) % self.window
        windows, self._pending = self._pending[:usable], self._pending[usable:]
        for start in range(0, usable, self.window):
            window = windows[start : start + self.window]
            utterance = self.iterator(window, self.speech_probability(window))
            if utterance is not None:
                yield self._segment(utterance)
                continue
            if self._speculative_turn is not None and self._current_key() != self._speculated:
                self._cancel_speculation()  # speech resumed: the pause did not end the turn
            if self._should_speculate():
                yield from self._provisional_segment()

    def flush(self) -> Iterator[SpeechSegment]:
        utterance = self.iterator.flush()
        if utterance is not None:
            yield self._segment(utterance)
        self._cancel_speculation()

    def _current_key(self) -> tuple[int, int] | None:
        if not self.iterator.speaking:
            return None
        return (self.iterator.speech_start, self.iterator.last_voiced_end)

    def _cancel_speculation(self) -> None:
        if self._speculative_turn is not None:
            logger.debug("turn %d: speech resumed, speculative reply dropped", self._speculative_turn.turn_id)
            self._speculative_turn.cancel()
            self._speculative_turn = None
            self._cancelled_speculations += 1

    def _should_speculate(self) -> bool:
        return self.speculate_after is not None and self.iterator.trailing_silence_samples >= self.speculate_after

    def _provisional_segment(self) -> Iterator[SpeechSegment]:
        utterance = self.iterator.peek()
        if utterance is None:
            return
        key = (utterance.start_sample, utterance.end_sample)
        if key == self._speculated:
            return  # already sent for this pause
        self._speculated = key
        # Whisper drops or mangles the last word when the audio stops 100 ms
        # after it; the final segment has up to speech_pad_ms of real silence
        # there, so the provisional one gets the same length of digital silence
        # (measured on the benchmark files: WER 10.1% unpadded, 8.6% padded,
        # 8.1% on the final segments).
        missing = self.iterator.pad_samples - self.iterator.trailing_silence_samples
        audio = utterance.audio
        if missing > 0:
            audio = np.concatenate([audio, np.zeros(missing, dtype=np.float32)])
        turn = None
        if self.speculative_reply:
            turn = Turn(speech_duration_s=utterance.speech_ms / 1000.0, session=self.session, speculative=True)
            self._speculative_turn = turn
        yield SpeechSegment(audio=audio, sample_rate=self.sample_rate, turn=turn, provisional=True, speech_key=key)

    def _segment(self, utterance) -> SpeechSegment:
        key = (utterance.start_sample, utterance.end_sample)
        if key != self._speculated:
            self._cancel_speculation()  # speculated on an earlier pause, not on this end
        turn, self._speculative_turn = self._speculative_turn, None
        if turn is None:
            turn = Turn(speech_duration_s=utterance.speech_ms / 1000.0, session=self.session)
        arrived = self._arrival_of(utterance.end_sample)
        if arrived is not None:
            turn.mark("speech_end", arrived)
        turn.confirm()  # marks end_of_turn
        turn.speculations_cancelled, self._cancelled_speculations = self._cancelled_speculations, 0
        self.should_listen.clear()
        logger.debug("turn %d: %.0f ms of speech", turn.turn_id, utterance.speech_ms)
        return SpeechSegment(
            audio=utterance.audio,
            sample_rate=self.sample_rate,
            turn=turn,
            speech_key=key,
        )

    def _arrival_of(self, sample_position: int) -> float | None:
        for end, received_at in self._arrivals:
            if end >= sample_position:
                return received_at
        return None
