"""Speech to text with faster-whisper (CTranslate2), the default STT.

The default model is the multilingual Whisper base that ships, split in two,
inside pip packages; `utils.packaged_models` joins and verifies it once.  Any
other name goes to faster-whisper unchanged (a local folder, or a hub id for
users with internet).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from baseHandler import BaseHandler
from utils.audio import resample
from utils.messages import EndOfResponse, SpeechSegment, Transcript
from utils.packaged_models import resolve_whisper_model

logger = logging.getLogger(__name__)

WHISPER_RATE = 16000


class FasterWhisperSTTHandler(BaseHandler):
    accepts = (SpeechSegment,)
    # Transcribes provisional segments ahead of the end of turn (--speculative_stt_ms).
    accepts_provisional = True

    def setup(
        self,
        model_name: str = "whisper-base",
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        language: str = "en",
        gen_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ImportError("the faster-whisper STT needs: pip install faster-whisper") from None
        path = resolve_whisper_model(model_name)
        self.model = WhisperModel(path, device=device, compute_type=compute_type, cpu_threads=cpu_threads)
        self.detect_language = language in ("auto", "", None)
        self.language = None if self.detect_language else language
        self.last_language = self.language
        if not self.model.model.is_multilingual and self.detect_language:
            logger.info("%s is English-only: language detection off", model_name)
            self.detect_language, self.language, self.last_language = False, "en", "en"
        self.gen_kwargs = {"beam_size": 1, "condition_on_previous_text": False, **(gen_kwargs or {})}
        self._speculation: tuple[tuple[int, int], str, str | None] | None = None
        self.warmup()

    def warmup(self) -> None:
        """One pass on a second of low noise: loads kernels, fills caches."""
        noise = np.random.default_rng(0).normal(0, 0.01, WHISPER_RATE).astype(np.float32)
        self.transcribe(noise)

    def transcribe(self, audio: np.ndarray) -> tuple[str, str | None]:
        segments, info = self.model.transcribe(audio, language=self.language, vad_filter=False, **self.gen_kwargs)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        return text, info.language if self.detect_language else self.language

    def process(self, message: SpeechSegment) -> Iterator[Transcript | EndOfResponse]:
        audio = message.audio
        if message.sample_rate != WHISPER_RATE:
            audio = resample(audio, message.sample_rate, WHISPER_RATE)
        if message.provisional:
            # The speaker paused: transcribe now, in case the pause ends the turn.
            self._speculation = (message.speech_key, *self.transcribe(audio))
            return
        turn = message.turn
        turn.mark("stt_start")
        speculation, self._speculation = self._speculation, None
        if speculation is not None and speculation[0] == message.speech_key:
            _, text, language = speculation  # nothing was said after the pause: reuse it
            logger.debug("turn %d: speculative transcript reused", turn.turn_id)
        else:
            text, language = self.transcribe(audio)
        turn.mark("stt_end")
        if language:
            self.last_language = language
        turn.transcript, turn.language = text, language or self.last_language
        logger.info("turn %d heard (%s): %s", turn.turn_id, turn.language, text or "<nothing>")
        if not text:
            # Noise the VAD took for speech: nothing to answer, listen again.
            yield EndOfResponse(turn=turn)
            return
        yield Transcript(text=text, language=turn.language, turn=turn)

    def on_reset(self) -> None:
        self._speculation = None
