"""Speech to text with Paraformer (FunASR), a fast non-autoregressive Chinese ASR.

Paraformer predicts all tokens of an utterance in one pass instead of one by
one, which makes it much faster than Whisper for Mandarin.  FunASR fetches the
weights on first use ("paraformer-zh" from ModelScope by default, or from the
Hugging Face hub with `hub="hf"`), so it needs internet once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from baseHandler import BaseHandler
from config.registry import missing_package
from STT.results import segment_audio, transcript_messages, transcription_due
from utils.messages import EndOfResponse, SpeechSegment, Transcript

logger = logging.getLogger(__name__)

PARAFORMER_RATE = 16000
# FunASR separates Chinese characters by spaces; Chinese is written without them.
_CJK = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<={_CJK})\s+(?={_CJK})")


def join_cjk(text: str) -> str:
    """Drop the spaces between Chinese characters but keep those between
    Latin words (the seed removed every space, gluing English words together)."""
    return _SPACE_BETWEEN_CJK.sub("", text).strip()


class ParaformerSTTHandler(BaseHandler):
    accepts = (SpeechSegment,)

    work_priority = staticmethod(transcription_due)  # every decode holds the CPU baton

    def setup(
        self,
        model_name: str = "paraformer-zh",
        device: str = "cpu",
        hub: str = "ms",
        language: str = "zh",
        gen_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            from funasr import AutoModel
        except ImportError:
            raise missing_package(ParaformerSTTHandler) from None
        # Passed unchanged: FunASR resolves short names, full ModelScope ids and local folders.
        self.model = AutoModel(model=model_name, device=device, hub=hub, disable_update=True)
        self.language = language
        self.gen_kwargs = dict(gen_kwargs or {})

    def warmup(self) -> None:
        noise = np.random.default_rng(0).normal(0, 0.01, PARAFORMER_RATE).astype(np.float32)
        self.transcribe(noise)

    def transcribe(self, audio: np.ndarray) -> str:
        results = self.model.generate(input=audio, **self.gen_kwargs)
        return join_cjk(results[0].get("text", "")) if results else ""

    def process(self, message: SpeechSegment) -> Iterator[Transcript | EndOfResponse]:
        message.turn.mark("stt_start")
        text = self.transcribe(segment_audio(message, PARAFORMER_RATE))
        yield from transcript_messages(message.turn, text, self.language)
