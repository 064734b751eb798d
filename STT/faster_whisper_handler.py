"""Speech to text with faster-whisper (CTranslate2), the default STT.

The default model is the multilingual Whisper base that ships, split in two,
inside pip packages; `utils.packaged_models` joins and verifies it once.  Any
other name goes to faster-whisper unchanged (a local folder, or a hub id for
users with internet).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from baseHandler import BaseHandler
from utils.messages import EndOfResponse, SpeechSegment, Transcript
from utils.packaged_models import resolve_whisper_model
from utils.stt_result import segment_audio, transcript_messages

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
        self._speculation: tuple[tuple[int, int], str, str | None, float, float] | None = None
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
        audio = segment_audio(message, WHISPER_RATE)
        if message.provisional:
            # The speaker paused: transcribe now, in case the pause ends the turn.
            began = time.perf_counter()
            text, language = self.transcribe(audio)
            self._speculation = (message.speech_key, text, language, began, time.perf_counter())
            return
        turn = message.turn
        speculation, self._speculation = self._speculation, None
        if speculation is not None and speculation[0] == message.speech_key:
            # Nothing was said after the pause: reuse it; the turn's STT time is
            # the speculative transcription's, started before the end of turn.
            _, text, language, began, ended = speculation
            turn.mark("stt_start", began)
            turn.mark("stt_end", ended)
            logger.debug("turn %d: speculative transcript reused", turn.turn_id)
        else:
            turn.mark("stt_start")
            text, language = self.transcribe(audio)
        if language:
            self.last_language = language
        yield from transcript_messages(turn, text, language or self.last_language)

    def on_reset(self) -> None:
        self._speculation = None
