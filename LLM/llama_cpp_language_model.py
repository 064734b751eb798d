"""Language model on llama.cpp (`llama-cpp-python`), the default LLM.

Runs a GGUF that ships inside pip packages (see `models.packaged`) or
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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from config.registry import missing_package
from conversation.session import Session
from LLM.language_model import LanguageModelHandler
from LLM.llama_threads import ThreadGovernor
from LLM.llama_tools import CALL_BIAS, NO_CALLS_AFTER_OUTPUT, LlamaToolCalls
from LLM.parked_caches import ParkedCaches
from LLM.prefix_cache import PrefixCache, SequenceState, common_prefix, load_sequence, save_sequence
from LLM.tool_calls import FunctionCall, ToolOffer, answered_calls, chat_template_request, request_alone
from models.packaged import resolve_gguf
from utils.cpu_baton import later, reply_priority
from utils.messages import PartialTranscript
from utils.threads import physical_cores

logger = logging.getLogger(__name__)

# The Qwen2.5 GGUFs' template shows the call format with doubled braces
# ('{{"name": ...}}', a leftover of a format string); the model then starts
# calls as '{{' text.  Fixed here, the one change made to a model's template.
_CALL_FORMAT = '\\"name\\": <function-name>, \\"arguments\\": <args-json-object>'
TEMPLATE_FIXES = {"{{" + _CALL_FORMAT + "}}": "{" + _CALL_FORMAT + "}"}


# The KV-cache cut reaches into llama-cpp-python's internals (no public API
# does this).  They exist since 0.3.10 and were tested on 0.3.36; requirements
# pin < 0.4.  If a release moves them, the cut turns itself off with one
# warning per model: conversations stay right, only slower once the chat is full.
# The verdict is kept on the model object itself (not keyed by id(), which a
# later object can reuse once this one is gone).
_CUT_DISABLED = "_s2s_cache_cut_disabled"


def cache_cut_unavailable(model: Any) -> str | None:
    """Why the KV-cache cut cannot run on this model object (None: it can)."""
    try:
        import llama_cpp
    except ImportError as error:
        return str(error)
    context = getattr(model, "_ctx", None)
    needed = {
        "Llama._input_ids": (model, "_input_ids"),
        "Llama.input_ids": (model, "input_ids"),
        "Llama.n_tokens": (model, "n_tokens"),
        "Llama._ctx": (model, "_ctx"),
        "LlamaContext.memory": (context, "memory"),
        "LlamaContext.kv_cache_seq_rm": (context, "kv_cache_seq_rm"),
        "LlamaContext.kv_cache_seq_shift": (context, "kv_cache_seq_shift"),
        "llama_cpp.llama_memory_can_shift": (llama_cpp, "llama_memory_can_shift"),
    }
    missing = [name for name, (owner, attribute) in needed.items() if owner is None or not hasattr(owner, attribute)]
    return f"missing {', '.join(missing)}" if missing else None


def disable_cache_cut(model: Any, why: str) -> None:
    """Turn the cut off for this model, saying so once."""
    if getattr(model, _CUT_DISABLED, None):
        return
    setattr(model, _CUT_DISABLED, why)
    try:
        from importlib.metadata import version

        installed = version("llama-cpp-python")
    except Exception:
        installed = "unknown"
    logger.warning(
        "llama-cpp-python %s does not offer what the KV-cache cut uses (%s): cut disabled, so once the chat is "
        "full each turn re-evaluates the history (slower, still right); tested with 0.3.10 to 0.3.x",
        installed,
        why,
    )


def drop_evicted_tokens(model: Any, prompt: list[int], min_run: int = 8) -> int:
    """Make llama.cpp's cache a prefix of `prompt` when the prompt is the
    cached tokens with a middle part removed (an old exchange dropped).

    Cached: [system][old exchange][kept history][last reply]; prompt:
    [system][kept history][last reply][new message].  The old exchange's
    cells are removed and the kept ones moved down by its length (llama.cpp
    re-rotates their keys), so the next decode starts at the new message.
    Returns how many cached tokens were moved (0: nothing to do, or the cut
    is disabled because llama-cpp-python's internals moved; never raises).
    """
    if getattr(model, _CUT_DISABLED, None):
        return 0
    why = cache_cut_unavailable(model)
    if why is not None:
        disable_cache_cut(model, why)
        return 0
    import llama_cpp

    try:
        cached = list(model._input_ids)
        start = common_prefix(cached, prompt)
        probe = prompt[start : start + min_run]
        if start >= len(cached) or len(probe) < min_run:
            return 0  # the prompt extends the cache, or too little left to match
        resume = next(
            (i for i in range(start + 1, len(cached) - min_run + 1) if cached[i : i + min_run] == probe), None
        )
        memory = model._ctx.memory
        if resume is None or memory is None or not llama_cpp.llama_memory_can_shift(memory):
            return 0
        # Leave at least the prompt's last token to decode: with the whole
        # prompt cached, llama-cpp-python samples from the logits it holds,
        # those of the previous reply's end (an empty answer).
        run = min(common_prefix(cached[resume:], prompt[start:]), len(prompt) - start - 1)
        if run <= 0:
            return 0
        model._ctx.kv_cache_seq_rm(0, resume + run, -1)
        model._ctx.kv_cache_seq_rm(0, start, resume)
        model._ctx.kv_cache_seq_shift(0, resume, resume + run, start - resume)
        model.input_ids[start : start + run] = cached[resume : resume + run]
        model.n_tokens = start + run
        return run
    except Exception as error:  # an internal changed its behaviour, not only its name
        disable_cache_cut(model, f"{type(error).__name__}: {error}")
        model.n_tokens = 0  # the cache may be half cut: evaluate the next prompt from scratch
        return 0


def read_ahead(model: Any, tokens: list[int]) -> int:
    """Evaluate `tokens` into llama.cpp's KV cache now, keeping the part of
    the cache they share; returns how many were evaluated.  The next
    generation whose prompt starts with them only evaluates what follows."""
    start = common_prefix(list(model._input_ids), tokens)
    if start >= len(tokens):
        return 0
    model.n_tokens = start  # eval() drops the cache cells from here on
    model.eval(tokens[start:])
    return len(tokens) - start


@dataclass(frozen=True)
class PausedGeneration:
    """What a reply paused between tokens needs to go on: its KV cache and
    the sampler of its generation."""

    cache: SequenceState
    sampler: Any


class LlamaCppLanguageModelHandler(LanguageModelHandler):
    # Computes as it is pulled, and can save and restore a paused reply's state.
    can_interleave = True
    # Warm-up: evaluate the system prompt once; llama.cpp keeps its KV cache,
    # so every later turn starts from the cached prefix.
    warmup_tokens = 1

    def setup(
        self,
        model_name: str = "qwen2.5-1.5b",
        n_ctx: int = 2048,
        n_threads: int = 0,
        n_gpu_layers: int = 0,
        device: str = "cpu",
        prefill: bool = True,
        tool_call_bias: float | None = None,
        tool_calls_after_output: bool | None = None,
        gen_kwargs: dict[str, Any] | None = None,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise missing_package(LlamaCppLanguageModelHandler) from None
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
        # --lm_n_threads 0: as many threads as the other work leaves cores (LLM/llama_threads.py).
        self.threads = ThreadGovernor(
            self._set_threads, n_threads or physical_cores(), adaptive=n_threads == 0 and n_gpu_layers == 0
        )
        why = cache_cut_unavailable(self.model)
        if why is not None:
            disable_cache_cut(self.model, why)  # said at start, not in the middle of a conversation
        self.model_name = model_name
        self.gen_kwargs = {"max_tokens": 128, "temperature": 0.0, **(gen_kwargs or {})}
        self.formatter = self._chat_formatter()
        self.caches = ParkedCaches()  # each conversation's KV cache while another is served
        self.prefill = prefill
        self.prefixes = PrefixCache()  # instructions + tools, evaluated once
        if tool_call_bias is None:
            tool_call_bias = CALL_BIAS.get(model_name, 0.0)
        if tool_calls_after_output is None:
            tool_calls_after_output = model_name not in NO_CALLS_AFTER_OUTPUT
        self.tool_calls = LlamaToolCalls(self.model, tool_call_bias, tool_calls_after_output)

    def pause_state(self) -> PausedGeneration | None:
        """The paused reply's KV cache and sampler (llama-cpp-python keeps the
        sampler of the generation in progress on the model object), to go
        on after another conversation's reply used the model."""
        cache = save_sequence(self.model)
        return None if cache is None else PausedGeneration(cache, getattr(self.model, "_sampler", None))

    def resume_state(self, state: PausedGeneration | None, session: Session | None) -> None:
        """Put the paused reply's cache and sampler back.  A cache that cannot
        be put back (llama-cpp-python's internals moved) cannot be gone on
        from: the reply's generator then fails, and the turn ends with an
        error rather than with words computed from another conversation."""
        self.caches.adopt(self.model, session or self.default_session)
        if state is None or not load_sequence(self.model, state.cache):
            self.model.n_tokens = 0
            raise RuntimeError("the paused reply's KV cache could not be restored")
        self.model._sampler = state.sampler

    def _set_threads(self, count: int) -> None:
        """Token by token generation on `count` threads; a prompt's batch
        keeps every core: its large products wait little for each other, and
        on fewer threads the first token came 140-250 ms later beside the
        TTS or a speaker (benchmarks/RESULTS_contention.md, run 3)."""
        from llama_cpp import llama_set_n_threads

        llama_set_n_threads(self.model.ctx, count, self.threads.most)

    def _chat_formatter(self) -> Any:
        """The GGUF's own chat template, as llama-cpp-python applies it, so the
        prompt's tokens are known before generation (None: no template)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.model.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        for wrong, right in TEMPLATE_FIXES.items():
            template = template.replace(wrong, right)
        self.template = template

        def token_text(token: int) -> str:
            return self.model.detokenize([token], special=True).decode("utf-8", "ignore")

        return Jinja2ChatFormatter(
            template=template,
            eos_token=token_text(self.model.token_eos()),
            bos_token=token_text(self.model.token_bos()),
        )

    def prompt_tokens(self, messages: list[dict[str, Any]], tools: ToolOffer | None = None) -> list[int] | None:
        """The prompt's tokens, as the GGUF's chat template writes it (with
        the offered tools: the template's tools section)."""
        if self.formatter is None:
            return None
        messages, declared = chat_template_request(messages, tools, self.template)
        result = self.formatter(messages=messages, tools=declared)
        return self.model.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)

    def tools_prefix(self, messages: list[dict[str, Any]], tools: ToolOffer, prompt: list[int]) -> list[int]:
        """The part of `prompt` that is the system turn with the tools (what
        every prompt of the session starts with, and of any session with
        the same instructions and tools)."""
        system = [message for message in messages[:1] if message.get("role") == self.init_chat_role]
        alone = self.prompt_tokens(system, tools) or []
        return prompt[: common_prefix(alone, prompt)]

    def generate(
        self, messages: list[dict[str, Any]], max_tokens: int | None = None, tools: ToolOffer | None = None
    ) -> Iterator[str | FunctionCall]:
        """The reply's pieces, each token computed holding the CPU baton (the
        cores go back to the other stages between tokens) at the priority of
        the turn's next words (`reply_priority`; the warm-up: now)."""
        turn = self.answering
        priority = (lambda: reply_priority(turn.audio_due())) if turn is not None else time.perf_counter
        return self.baton.steps(self.threads.governed(self._pieces(messages, max_tokens, tools)), priority, "LLM")

    def _pieces(
        self, messages: list[dict[str, Any]], max_tokens: int | None, tools: ToolOffer | None
    ) -> Iterator[str | FunctionCall]:
        kwargs = dict(self.gen_kwargs)
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if tools and self.formatter is not None:
            yield from self._generate_with_tools(messages, tools, kwargs)
            return
        prompt = self.prompt_tokens(messages)
        self._cache_for(self.serving, prompt or [])  # no template: the cache still changes hands
        for chunk in self.model.create_chat_completion(messages=messages, stream=True, **kwargs):
            delta = chunk["choices"][0]["delta"].get("content")
            if delta:
                yield delta

    def _generate_with_tools(
        self, messages: list[dict[str, Any]], tools: ToolOffer, kwargs: dict[str, Any]
    ) -> Iterator[str | FunctionCall]:
        """A reply that may call the offered tools (LLM/llama_tools.py), on a
        prompt whose instructions + tools prefix comes from the prefix cache."""
        prompt = self.prompt_tokens(messages, tools)
        assert prompt is not None
        self._cache_for(self.serving, prompt)
        evaluated = self.prefixes.prepare(self.model, self.tools_prefix(messages, tools, prompt))
        if evaluated:
            logger.info("instructions + tools prompt evaluated once (%d tokens); reused from now on", evaluated)
        # No new words of the user's (a function's output, or a response.create after one came late):
        # the model's own choice, without the bias that makes it act on a request.
        answers_output = bool(messages) and messages[-1].get("role") != self.user_role
        alone = request_alone(messages, self.init_chat_role)
        alone_prompt = self.prompt_tokens(alone, tools) if alone is not None and not answers_output else None
        yield from self.tool_calls.reply(prompt, tools, kwargs, answers_output, alone_prompt, answered_calls(messages))

    def _cache_for(self, session: Session, prompt: list[int]) -> None:
        """Make the live KV cache `session`'s, for `prompt` (its own cache put
        back if parked, `LLM/parked_caches.py`), then cut its dropped history
        out of it (`drop_evicted_tokens`): only a cache of the conversation
        itself is cut; another conversation's prompt only ever reuses an exact
        prefix (the system prompt), so nothing computed in one conversation's
        context reaches another's."""
        if self.caches.switch(self.model, session, prompt) and drop_evicted_tokens(self.model, prompt):
            logger.debug("dropped history cut from the KV cache; %d cached tokens kept", self.model.n_tokens)

    def warmup(self) -> None:
        """The usual warm-up, and with the server's own tools, their prompt
        prefix evaluated and saved: the first turn with tools does not pay for it."""
        super().warmup()
        self.prepare(self.default_session)

    def prepare(self, session: Session) -> None:
        """The session's instructions + tools prompt prefix, evaluated and
        saved now (nothing when it is saved already, or without tools)."""
        offer = self.tool_offer(session)
        if not offer or self.formatter is None:
            return
        messages = [*self.chat_for(session).messages()[:1], {"role": self.user_role, "content": "Hi"}]
        prompt = self.prompt_tokens(messages, offer) or []
        prefix = self.tools_prefix(messages, offer, prompt)
        with self.baton.hold(later(), "LLM"):  # work ahead: behind what is needed now
            self.caches.switch(self.model, session, prefix)  # the live cache becomes this conversation's
            evaluated = self.prefixes.prepare(self.model, prefix)
        if evaluated:
            logger.info("instructions + tools prompt of %s evaluated ahead (%d tokens)", session.id, evaluated)

    def read_ahead(self, partial: PartialTranscript) -> int:
        """Evaluate the prompt of the coming answer as far as the user's
        stable words, while they are still speaking: at the end of the turn
        only their last words and the template's closing tokens are left.
        Returns how many tokens were evaluated.

        The cache then holds this conversation's prompt.  Only a cached
        prefix that is token for token the same is kept (the system prompt
        another conversation shares); the history cut (`drop_evicted_tokens`)
        moves cached keys only within one conversation, as in `generate`."""
        if not self.prefill:
            return 0
        messages = self.prompt_so_far(partial)
        if messages is None:
            return 0
        offer = self.tool_offer(partial.session)
        tools = offer if offer and self.formatter is not None else None
        with_text = self.prompt_tokens(messages, tools)
        more = [*messages[:-1], {**messages[-1], "content": messages[-1]["content"] + " and"}]
        with_more_text = self.prompt_tokens(more, tools)
        if with_text is None or with_more_text is None:
            return 0
        # What more words will not change, less the last token (a word's
        # token can merge with what follows it).
        stable = with_text[: common_prefix(with_text, with_more_text) - 1]
        session = partial.session or self.default_session
        with self.baton.hold(later(), "LLM"):  # work ahead: behind what is needed now
            self.threads.step()  # the user speaks: the STT follows them on the same cores
            self._cache_for(session, stable)
            if tools is not None:
                self.prefixes.prepare(self.model, self.tools_prefix(messages, tools, stable))
            return read_ahead(self.model, stable)
