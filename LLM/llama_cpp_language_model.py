"""Language model on llama.cpp (`llama-cpp-python`), the default LLM.

Runs a GGUF that ships inside pip packages (see `utils.packaged_models`) or
any .gguf path.  Tokens are streamed and cut into sentences as they arrive, so
the TTS starts speaking the first sentence while the rest is generated.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from baseHandler import BaseHandler
from utils.chat import Chat
from utils.llm_stream import answer_transcript
from utils.messages import EndOfResponse, LLMSentence, Transcript
from utils.packaged_models import resolve_gguf

logger = logging.getLogger(__name__)


def physical_cores() -> int:
    """llama.cpp runs best on one thread per core; hyper-threads fight for units."""
    count = os.cpu_count() or 1
    return max(1, count // 2) if count > 2 else count


class LlamaCppLanguageModelHandler(BaseHandler):
    accepts = (Transcript,)

    def setup(
        self,
        model_name: str = "qwen2.5-0.5b",
        n_ctx: int = 2048,
        n_threads: int = 0,
        n_gpu_layers: int = 0,
        device: str = "cpu",
        user_role: str = "user",
        init_chat_role: str = "system",
        init_chat_prompt: str | None = None,
        chat_size: int = 2,
        gen_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ImportError("the llama_cpp LLM needs: pip install llama-cpp-python") from None
        path = resolve_gguf(model_name)
        if device.startswith("cuda") and n_gpu_layers == 0:
            n_gpu_layers = -1
        self.model = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads or physical_cores(),
            n_gpu_layers=n_gpu_layers,
            verbose=False,
        )
        self.model_name = model_name
        self.user_role = user_role
        self.chat = Chat(size=chat_size, system_prompt=init_chat_prompt, system_role=init_chat_role)
        self.gen_kwargs = {"max_tokens": 128, "temperature": 0.0, **(gen_kwargs or {})}
        self.warmup()

    def warmup(self) -> None:
        """Evaluate the system prompt once; llama.cpp keeps its KV cache, so
        every later turn starts from the cached prefix."""
        for _ in self.generate([*self.chat.messages(), {"role": self.user_role, "content": "Hi"}], 1):
            pass

    def generate(self, messages: list[dict[str, str]], max_tokens: int | None = None) -> Iterator[str]:
        kwargs = dict(self.gen_kwargs)
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        for chunk in self.model.create_chat_completion(messages=messages, stream=True, **kwargs):
            delta = chunk["choices"][0]["delta"].get("content")
            if delta:
                yield delta

    def on_reset(self) -> None:
        self.chat.reset()

    def process(self, message: Transcript) -> Iterator[LLMSentence | EndOfResponse]:
        yield from answer_transcript(message, self.chat, self.generate, self.stop_event, self.user_role)
