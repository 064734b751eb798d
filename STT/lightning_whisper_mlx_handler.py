"""Speech to text with lightning-whisper-mlx: Whisper on Apple silicon (MLX).

The backend of `--local_mac_optimal_settings`.  Model names are the package's
own ("distil-large-v3", "large-v3", "base", ...); it downloads the MLX weights
from the Hugging Face hub into `./mlx_models/` on first use.  A hub id such as
"distil-whisper/distil-large-v3" is accepted and cut to its last part, as in
the seed.  Language handling is the transformers Whisper backend's: a fixed
code, or "auto" restricted to the seed's twelve languages with a fallback to
the last language heard and an "-auto" suffix on the transcript's language.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from baseHandler import BaseHandler
from config.registry import missing_package
from STT.results import AUTO_SUFFIX, segment_audio, transcript_messages, transcription_due
from STT.whisper_stt_handler import choose_language
from utils.messages import EndOfResponse, SpeechSegment, Transcript

logger = logging.getLogger(__name__)

WHISPER_RATE = 16000


class LightningWhisperSTTHandler(BaseHandler):
    accepts = (SpeechSegment,)

    work_priority = staticmethod(transcription_due)  # every decode holds the CPU baton

    def setup(
        self,
        model_name: str = "distil-large-v3",
        batch_size: int = 6,
        quant: str | None = None,
        language: str | None = "en",
        gen_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            from lightning_whisper_mlx import LightningWhisperMLX
        except ImportError:
            raise missing_package(LightningWhisperSTTHandler, needs="needs Apple silicon and") from None
        model_name = model_name.rsplit("/", 1)[-1]
        self.model = LightningWhisperMLX(model=model_name, batch_size=batch_size, quant=quant or None)
        self.detect = language in ("auto", "", None)
        self.language = None if self.detect else language
        self.last_language = self.language

    def warmup(self) -> None:
        """One pass on a second of low noise: MLX compiles its kernels lazily."""
        noise = np.random.default_rng(0).normal(0, 0.01, WHISPER_RATE).astype(np.float32)
        self.model.transcribe(noise, language=self.language or "en")

    def transcribe(self, audio: np.ndarray) -> tuple[str, str | None]:
        """Text and language code (with the `-auto` suffix when detected)."""
        if not self.detect:
            result = self.model.transcribe(audio, language=self.language)
            return result["text"].strip(), self.language
        result = self.model.transcribe(audio)  # language=None: the package detects it
        language, trusted = choose_language(result.get("language"), self.last_language)
        if not trusted:
            logger.warning("whisper detected unsupported language %r: using %s", result.get("language"), language)
            result = self.model.transcribe(audio, language=language)
        self.last_language = language
        return result["text"].strip(), language + AUTO_SUFFIX

    def process(self, message: SpeechSegment) -> Iterator[Transcript | EndOfResponse]:
        message.turn.mark("stt_start")
        text, language = self.transcribe(segment_audio(message, WHISPER_RATE))
        yield from transcript_messages(message.turn, text, language)
