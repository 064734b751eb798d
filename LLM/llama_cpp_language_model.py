"""Language model on llama.cpp (`llama-cpp-python`), the default LLM.

Runs a GGUF that ships inside pip packages (see `utils.packaged_models`) or
any .gguf path.  Tokens are streamed and cut into sentences as they arrive, so
the TTS starts speaking the first sentence while the rest is generated.

llama.cpp skips the part of a prompt that matches what it evaluated last, so
each turn only evaluates the new user message, until the chat drops its
oldest exchange: then the match ends after the system prompt and the whole
history is evaluated again, every turn (~300 ms on 2 cores).  Instead, the
dropped exchange is cut out of the KV cache and the rest shifted into its
place (`drop_evicted_tokens`), so long conversations stay as fast as short ones.
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


def common_prefix(a: list[int], b: list[int]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def drop_evicted_tokens(model: Any, prompt: list[int], min_run: int = 8) -> int:
    """Make llama.cpp's cache a prefix of `prompt` when the prompt is the
    cached tokens with a middle part removed (an old exchange dropped).

    Cached: [system][old exchange][kept history][last reply]; prompt:
    [system][kept history][last reply][new message].  The old exchange's
    cells are removed and the kept ones moved down by its length (llama.cpp
    re-rotates their keys), so the next decode starts at the new message.
    Returns how many cached tokens were moved (0: nothing to do).
    """
    import llama_cpp

    cached = list(model._input_ids)
    start = common_prefix(cached, prompt)
    probe = prompt[start : start + min_run]
    if start >= len(cached) or len(probe) < min_run:
        return 0  # the prompt extends the cache, or too little left to match
    resume = next((i for i in range(start + 1, len(cached) - min_run + 1) if cached[i : i + min_run] == probe), None)
    memory = model._ctx.memory
    if resume is None or memory is None or not llama_cpp.llama_memory_can_shift(memory):
        return 0
    run = common_prefix(cached[resume:], prompt[start:])
    model._ctx.kv_cache_seq_rm(0, resume + run, -1)
    model._ctx.kv_cache_seq_rm(0, start, resume)
    model._ctx.kv_cache_seq_shift(0, resume, resume + run, start - resume)
    model.input_ids[start : start + run] = cached[resume : resume + run]
    model.n_tokens = start + run
    return run


class LlamaCppLanguageModelHandler(BaseHandler):
    accepts = (Transcript,)

    def setup(
        self,
        model_name: str = "qwen2.5-1.5b",
        n_ctx: int = 2048,
        n_threads: int = 0,
        n_gpu_layers: int = 0,
        device: str = "cpu",
        user_role: str = "user",
        init_chat_role: str = "system",
        init_chat_prompt: str | None = None,
        chat_size: int = 2,
        first_clause_words: int = 0,
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
        self.first_clause_words = first_clause_words
        self.chat = Chat(size=chat_size, system_prompt=init_chat_prompt, system_role=init_chat_role)
        self.gen_kwargs = {"max_tokens": 128, "temperature": 0.0, **(gen_kwargs or {})}
        self.formatter = self._chat_formatter()
        self.warmup()

    def _chat_formatter(self) -> Any:
        """The GGUF's own chat template, as llama-cpp-python applies it, so the
        prompt's tokens are known before generation (None: no template)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.model.metadata.get("tokenizer.chat_template")
        if not template:
            return None

        def token_text(token: int) -> str:
            return self.model.detokenize([token], special=True).decode("utf-8", "ignore")

        return Jinja2ChatFormatter(
            template=template,
            eos_token=token_text(self.model.token_eos()),
            bos_token=token_text(self.model.token_bos()),
        )

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int] | None:
        if self.formatter is None:
            return None
        result = self.formatter(messages=messages)
        return self.model.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)

    def warmup(self) -> None:
        """Evaluate the system prompt once; llama.cpp keeps its KV cache, so
        every later turn starts from the cached prefix."""
        for _ in self.generate([*self.chat.messages(), {"role": self.user_role, "content": "Hi"}], 1):
            pass

    def generate(self, messages: list[dict[str, str]], max_tokens: int | None = None) -> Iterator[str]:
        kwargs = dict(self.gen_kwargs)
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        prompt = self.prompt_tokens(messages)
        if prompt is not None and drop_evicted_tokens(self.model, prompt):
            logger.debug("dropped history cut from the KV cache; %d cached tokens kept", self.model.n_tokens)
        for chunk in self.model.create_chat_completion(messages=messages, stream=True, **kwargs):
            delta = chunk["choices"][0]["delta"].get("content")
            if delta:
                yield delta

    def on_reset(self) -> None:
        self.chat.reset()

    def process(self, message: Transcript) -> Iterator[LLMSentence | EndOfResponse]:
        yield from answer_transcript(
            message, self.chat, self.generate, self.stop_event, self.user_role, self.first_clause_words
        )
