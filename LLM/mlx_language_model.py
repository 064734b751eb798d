"""Language model on Apple's MLX (`mlx-lm`), for Apple silicon Macs.

MLX runs on the Mac's unified memory and GPU, so it is the fast choice there
(`--local_mac_optimal_settings` picks it).  `stream_generate` yields text as
tokens are decoded; the shared answer loop cuts it into sentences, so the TTS
starts on the first sentence while the rest is generated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from config.registry import missing_package
from LLM.language_model import LanguageModelHandler
from LLM.tool_calls import FunctionCall, ToolOffer, chat_template_request, filtered_pieces

logger = logging.getLogger(__name__)


class MLXLanguageModelHandler(LanguageModelHandler):
    # Warm-up: one short generation, as MLX compiles its kernels on first use.
    warmup_tokens = 2

    def setup(
        self,
        model_name: str = "mlx-community/Qwen2.5-0.5B-Instruct-4bit",
        gen_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            from mlx_lm import load, stream_generate
            from mlx_lm.sample_utils import make_sampler
        except ImportError:
            raise missing_package(MLXLanguageModelHandler, needs="needs (Apple silicon only)") from None
        self._stream_generate = stream_generate
        self._make_sampler = make_sampler
        self.model, self.tokenizer = load(model_name)
        self.model_name = model_name
        self.gen_kwargs = {"max_tokens": 128, "temperature": 0.0, "top_p": 1.0, **(gen_kwargs or {})}

    def generate(
        self, messages: list[dict[str, Any]], max_tokens: int | None = None, tools: ToolOffer | None = None
    ) -> Iterator[str | FunctionCall]:
        """The reply's text; with `tools`, the chat template's tools (or the
        tools written into the system prompt) and the <tool_call> blocks of the
        reply turned into calls (unconstrained: a call that does not match its
        schema is dropped)."""
        kwargs = dict(self.gen_kwargs)
        temperature = float(kwargs.pop("temperature"))
        top_p = float(kwargs.pop("top_p"))
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        messages, declared = chat_template_request(messages, tools, getattr(self.tokenizer, "chat_template", None))
        extra = {"tools": declared} if declared else {}
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)
        sampler = self._make_sampler(temp=temperature, top_p=top_p)
        pieces = (
            response.text
            for response in self._stream_generate(self.model, self.tokenizer, prompt, sampler=sampler, **kwargs)
            if response.text
        )
        yield from filtered_pieces(pieces, tools) if tools else pieces
