"""Speech to text with Whisper through transformers (PyTorch), the seed's STT.

Any Whisper checkpoint that transformers loads works: the default
`distil-whisper/distil-large-v3` comes from the Hugging Face hub (internet
needed once, then the local cache), or give a local folder.  On a GPU,
`compile_mode` switches to a static KV cache and compiles the forward pass,
which removes most of the per-token Python overhead of autoregressive decoding.

Language: a fixed code is passed to generate (no detection cost).  With
`language="auto"` the language is detected on every turn, but only the seed's
twelve supported languages are trusted: a detection outside them (often a
wrong guess on short or noisy speech) falls back to the last language the
speaker used.  The transcript's language then carries an `-auto` suffix
("fr-auto"), the seed's signal that it was detected rather than chosen;
`conversation.chat.language_instruction` strips it before asking the LLM to reply in
that language, and any other consumer should `removesuffix("-auto")`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from baseHandler import BaseHandler
from config.registry import missing_package
from STT.results import AUTO_SUFFIX, segment_audio, transcript_messages, transcription_due
from utils.messages import EndOfResponse, SpeechSegment, Transcript

logger = logging.getLogger(__name__)

WHISPER_RATE = 16000
WINDOW_S = 30  # Whisper's receptive field; longer input needs long-form decoding
SUPPORTED_LANGUAGES = ("en", "fr", "es", "zh", "ja", "ko", "hi", "de", "pt", "pl", "it", "nl")
DEFAULT_FALLBACK_LANGUAGE = "en"  # auto mode, before any supported language was heard


def resolve_device(device: str) -> str:
    """'auto' -> the best accelerator torch can see, else the name unchanged."""
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(torch_dtype: str | None, device: str) -> Any:
    """None/'auto' -> float16 on an accelerator, float32 on CPU (CPU half
    precision is slow and loses accuracy); otherwise the named torch dtype."""
    import torch

    if torch_dtype in (None, "", "auto"):
        return torch.float32 if device == "cpu" else torch.float16
    dtype = getattr(torch, torch_dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown torch dtype {torch_dtype!r}: use float32, float16 or bfloat16")
    return dtype


def choose_language(detected: str | None, last_language: str | None) -> tuple[str, bool]:
    """The language to transcribe in, and whether the detection was trusted.

    Only the seed's supported languages are trusted; anything else falls back
    to the last language heard (English before the first turn)."""
    if detected in SUPPORTED_LANGUAGES:
        return detected, True
    return last_language or DEFAULT_FALLBACK_LANGUAGE, False


class WhisperSTTHandler(BaseHandler):
    accepts = (SpeechSegment,)

    work_priority = staticmethod(transcription_due)  # every decode holds the CPU baton

    def setup(
        self,
        model_name: str = "distil-whisper/distil-large-v3",
        device: str = "auto",
        torch_dtype: str | None = None,
        compile_mode: str | None = None,
        language: str | None = "en",
        gen_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            import torch
            from transformers import AutoProcessor, WhisperForConditionalGeneration
        except ImportError:
            raise missing_package(WhisperSTTHandler) from None
        self.torch = torch
        self.device = resolve_device(device)
        self.torch_dtype = resolve_dtype(torch_dtype, self.device)
        if compile_mode in ("", "none", "None"):
            compile_mode = None
        if compile_mode not in (None, "default", "reduce-overhead", "max-autotune"):
            raise ValueError(f"compile_mode must be default, reduce-overhead or max-autotune, not {compile_mode!r}")
        self.compile_mode = compile_mode

        self.processor = AutoProcessor.from_pretrained(model_name)
        self.model = WhisperForConditionalGeneration.from_pretrained(model_name, dtype=self.torch_dtype)
        self.model.to(self.device).eval()

        self.gen_kwargs: dict[str, Any] = {"max_new_tokens": 128, **(gen_kwargs or {})}
        generation_config = self.model.generation_config
        self.multilingual = bool(getattr(generation_config, "is_multilingual", True))
        self.detect = language in ("auto", "", None)
        if not self.multilingual:
            # English-only checkpoints refuse a language or task argument.
            logger.info("%s is English-only: language fixed to en", model_name)
            self.detect, self.language = False, "en"
            self.gen_kwargs.pop("task", None)
        else:
            self.language = None if self.detect else language
        self.last_language = self.language

        if self.compile_mode:
            # A static cache keeps tensor shapes fixed across steps so the compiled
            # graph is reused; transformers then compiles the decoding forward
            # (on any device, not only CUDA, since we ask for it explicitly).
            from transformers import CompileConfig

            generation_config.cache_implementation = "static"
            compile_config = CompileConfig(mode=self.compile_mode, fullgraph=True)
            compile_config._compile_all_devices = True
            generation_config.compile_config = compile_config

    # --- model calls ---------------------------------------------------------------
    def features(self, audio: np.ndarray) -> tuple[Any, Any]:
        """Log-mel features (and an attention mask for audio over 30 s, which
        goes to transformers' sequential long-form decoding instead of being cut)."""
        if len(audio) <= WINDOW_S * WHISPER_RATE:
            inputs = self.processor(audio, sampling_rate=WHISPER_RATE, return_tensors="pt")
            mask = None
        else:
            inputs = self.processor(
                audio,
                sampling_rate=WHISPER_RATE,
                return_tensors="pt",
                truncation=False,
                padding="longest",
                return_attention_mask=True,
            )
            mask = inputs.attention_mask.to(self.device)
        return inputs.input_features.to(self.device, dtype=self.torch_dtype), mask

    def detect_language(self, features: Any) -> tuple[str | None, Any]:
        """Whisper's own language guess on the first 30 s window.

        Returns the code and the encoder output, which generate reuses so a
        short turn pays for the encoder once, not twice."""
        window = features[..., : WINDOW_S * 100]  # 100 mel frames per second
        encoder_outputs = self.model.get_encoder()(window)
        token_id = self.model.detect_language(encoder_outputs=encoder_outputs)
        token = self.processor.tokenizer.convert_ids_to_tokens(int(token_id[0]))
        code = token[2:-2] if token and token.startswith("<|") and token.endswith("|>") else None
        return code, encoder_outputs

    def generate(self, features: Any, mask: Any, language: str | None, **overrides: Any) -> str:
        kwargs = {**self.gen_kwargs, **overrides}
        if language is not None and self.multilingual:
            kwargs["language"] = language
        if mask is not None:  # long-form: sequential 30 s windows
            ids = self.model.generate(features, attention_mask=mask, **kwargs)
        elif "encoder_outputs" in kwargs:
            ids = self.model.generate(**kwargs)
        else:
            ids = self.model.generate(features, **kwargs)
        if not isinstance(ids, self.torch.Tensor):  # return_dict_in_generate / long-form dicts
            ids = ids["sequences"]
        return self.processor.batch_decode(ids, skip_special_tokens=True)[0].strip()

    def transcribe(self, audio: np.ndarray) -> tuple[str, str | None]:
        """Text and language code (with the `-auto` suffix when detected)."""
        with self.torch.inference_mode():
            features, mask = self.features(audio)
            if not self.detect:
                return self.generate(features, mask, self.language), self.language
            detected, encoder_outputs = self.detect_language(features)
            language, trusted = choose_language(detected, self.last_language)
            if not trusted:
                logger.warning("whisper detected unsupported language %r: using %s", detected, language)
            self.last_language = language
            extra = {"encoder_outputs": encoder_outputs} if mask is None else {}
            return self.generate(features, mask, language, **extra), language + AUTO_SUFFIX

    # --- life cycle ------------------------------------------------------------------
    def warmup(self) -> None:
        """Decode low noise so kernels are loaded (and, when compiling, graphs
        are built) before the first turn.

        A compiled model builds its graphs on the first calls and CUDA graphs
        are captured on a later one, so it gets an extra step; it also decodes
        the full `max_new_tokens`, since a longer generation than any seen in
        warm-up would trigger a new capture mid-conversation."""
        logger.info("warming up %s on %s (%s)", self.name, self.device, self.torch_dtype)
        steps = 2 if self.compile_mode else 1
        overrides: dict[str, Any] = {}
        if self.compile_mode:
            overrides["min_new_tokens"] = self.gen_kwargs["max_new_tokens"]
        noise = np.random.default_rng(0).normal(0, 0.01, WHISPER_RATE).astype(np.float32)
        with self.torch.inference_mode():
            features, _ = self.features(noise)
            for _ in range(steps):
                if self.detect:
                    self.detect_language(features)
                self.generate(features, None, self.language or DEFAULT_FALLBACK_LANGUAGE, **overrides)

    def process(self, message: SpeechSegment) -> Iterator[Transcript | EndOfResponse]:
        message.turn.mark("stt_start")
        text, language = self.transcribe(segment_audio(message, WHISPER_RATE))
        yield from transcript_messages(message.turn, text, language)

    def cleanup(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.empty_cache()
