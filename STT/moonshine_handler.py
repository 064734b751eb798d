"""Speech to text with Moonshine through transformers.

Moonshine (Useful Sensors) is an English ASR built for live transcription: its
encoder cost grows with the audio's length instead of padding every input to
30 s like Whisper, so short voice-assistant turns are cheap.  The weights come
from the Hugging Face hub (`UsefulSensors/moonshine-tiny` or
`UsefulSensors/moonshine-base`; internet needed once, then the local cache), or
give a local folder.

Random or confused decoders can repeat a token until the length limit, so
generation is capped at a token rate proportional to the audio's duration
(the model card's guard against hallucination loops).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from baseHandler import BaseHandler
from config.registry import missing_package
from STT.results import segment_audio, transcript_messages, transcription_due
from STT.whisper_stt_handler import resolve_device, resolve_dtype
from utils.messages import EndOfResponse, SpeechSegment, Transcript

logger = logging.getLogger(__name__)

MOONSHINE_RATE = 16000


def token_limit(n_samples: int, tokens_per_second: float, max_new_tokens: int | None) -> int:
    """Most tokens worth generating for this much audio (at least a few)."""
    limit = max(4, math.ceil(n_samples / MOONSHINE_RATE * tokens_per_second))
    return min(limit, max_new_tokens) if max_new_tokens else limit


class MoonshineSTTHandler(BaseHandler):
    accepts = (SpeechSegment,)

    work_priority = staticmethod(transcription_due)  # every decode holds the CPU baton

    def setup(
        self,
        model_name: str = "UsefulSensors/moonshine-base",
        device: str = "auto",
        torch_dtype: str | None = None,
        tokens_per_second: float = 6.5,
        language: str = "en",
        gen_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            import torch
            from transformers import AutoProcessor, MoonshineForConditionalGeneration
        except ImportError:
            raise missing_package(MoonshineSTTHandler) from None
        self.torch = torch
        self.device = resolve_device(device)
        self.torch_dtype = resolve_dtype(torch_dtype, self.device)
        self.processor = AutoProcessor.from_pretrained(model_name)
        self.model = MoonshineForConditionalGeneration.from_pretrained(model_name, dtype=self.torch_dtype)
        self.model.to(self.device).eval()
        self.tokens_per_second = tokens_per_second
        self.language = language  # the released Moonshine models are English-only
        self.gen_kwargs = dict(gen_kwargs or {})

    def warmup(self) -> None:
        noise = np.random.default_rng(0).normal(0, 0.01, MOONSHINE_RATE).astype(np.float32)
        self.transcribe(noise)

    def transcribe(self, audio: np.ndarray) -> str:
        inputs = self.processor(audio, sampling_rate=MOONSHINE_RATE, return_tensors="pt")
        inputs = {
            key: value.to(self.device, dtype=self.torch_dtype) if value.is_floating_point() else value.to(self.device)
            for key, value in inputs.items()
        }
        kwargs = dict(self.gen_kwargs)
        kwargs["max_new_tokens"] = token_limit(len(audio), self.tokens_per_second, kwargs.get("max_new_tokens"))
        with self.torch.inference_mode():
            ids = self.model.generate(**inputs, **kwargs)
        return self.processor.batch_decode(ids, skip_special_tokens=True)[0].strip()

    def process(self, message: SpeechSegment) -> Iterator[Transcript | EndOfResponse]:
        message.turn.mark("stt_start")
        text = self.transcribe(segment_audio(message, MOONSHINE_RATE))
        yield from transcript_messages(message.turn, text, self.language)

    def cleanup(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.empty_cache()
