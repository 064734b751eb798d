"""KV states of prompt prefixes (instructions + tools), evaluated once and reused.

A tools section lengthens every prompt by hundreds of tokens (the six tools
of the benchmark: ~510 tokens, 7-13 s to evaluate for the 1.5B model on two
cores).  llama.cpp keeps one KV cache and reuses only the part of it that a
new prompt shares token for token, so two conversations with different
prompts would evaluate their tools again every time they take turns.  Here
the KV state of a prefix (the system turn: instructions and tools, nothing
of any conversation) is saved once, right after it is evaluated, and loaded
back whenever a prompt starts with it and the live cache does not hold it:
per session and across sessions whose prefix is the same text.

Only llama.cpp's sequence-state calls are used (`llama_state_seq_get_data` /
`_set_data` on sequence 0) plus the Llama object's token bookkeeping
(`input_ids`, `n_tokens`), as the KV-cache cut does; a llama-cpp-python that
moves them turns the cache off with one warning (prompts are then evaluated
whole: right, only slower).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


def common_prefix(a: list[int], b: list[int]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


@dataclass(frozen=True)
class SavedPrefix:
    tokens: tuple[int, ...]
    state: bytes


class PrefixCache:
    """Saved KV states of prompt prefixes, at most `max_entries` (least
    recently used dropped first)."""

    def __init__(self, max_entries: int = 4) -> None:
        self.max_entries = max_entries
        self._saved: OrderedDict[str, SavedPrefix] = OrderedDict()
        self.disabled: str | None = None
        self.restored = 0  # how many times a saved prefix replaced evaluating it (for tests and logs)

    @staticmethod
    def _key(tokens: list[int]) -> str:
        return hashlib.sha1(repr(tokens).encode()).hexdigest()

    def __contains__(self, tokens: list[int]) -> bool:
        return self._key(tokens) in self._saved

    def prepare(self, model: Any, prefix: list[int]) -> int:
        """Make the model's KV cache start with `prefix`: already there, loaded
        from a saved state, or evaluated now and saved.  Returns how many
        tokens were evaluated (0 when the cache already held it or a saved
        state was loaded)."""
        if not prefix or self.disabled:
            return 0
        cached = common_prefix(list(model.input_ids[: model.n_tokens]), prefix)
        if cached >= len(prefix):
            return 0
        key = self._key(prefix)
        saved = self._saved.get(key)
        if saved is not None and self._load(model, saved):
            self._saved.move_to_end(key)
            self.restored += 1
            return 0
        model.n_tokens = cached  # eval() drops the cache cells from here on
        model.eval(prefix[cached:])
        self._save(model, prefix)
        return len(prefix) - cached

    def _save(self, model: Any, prefix: list[int]) -> None:
        try:
            state = bytes(_sequence_state(model))
        except Exception as error:  # an internal moved: cache off, prompts evaluated whole
            self._disable(f"{type(error).__name__}: {error}")
            return
        self._saved[self._key(prefix)] = SavedPrefix(tuple(prefix), state)
        while len(self._saved) > self.max_entries:
            self._saved.popitem(last=False)
        logger.debug("saved the KV state of a %d-token prompt prefix (%d KiB)", len(prefix), len(state) // 1024)

    def _load(self, model: Any, saved: SavedPrefix) -> bool:
        try:
            _set_sequence_state(model, saved.tokens, (ctypes.c_uint8 * len(saved.state)).from_buffer_copy(saved.state))
            return True
        except Exception as error:
            self._disable(f"{type(error).__name__}: {error}")
            model.n_tokens = 0  # the cache may be half loaded: evaluate the next prompt from scratch
            return False

    def _disable(self, why: str) -> None:
        if self.disabled is None:
            logger.warning("prompt-prefix cache disabled (%s): each new tools prompt is evaluated whole", why)
        self.disabled = why
        self._saved.clear()


@dataclass(frozen=True)
class SequenceState:
    """The KV state of the whole live cache, to put back after evaluating another prompt."""

    tokens: tuple[int, ...]
    state: Any  # a ctypes byte array, kept as it is (copying 20-30 MB into bytes costs more than the save)


def save_sequence(model: Any) -> SequenceState | None:
    """The model's live KV state (None: llama-cpp-python's internals moved;
    never raises)."""
    try:
        return SequenceState(tuple(model.input_ids[: model.n_tokens]), _sequence_state(model))
    except Exception as error:
        logger.debug("KV state not saved (%s: %s)", type(error).__name__, error)
        return None


def load_sequence(model: Any, saved: SequenceState) -> bool:
    """Put a saved live KV state back; False (and an empty cache, so the next
    prompt is evaluated whole) when it cannot be; never raises."""
    try:
        _set_sequence_state(model, saved.tokens, saved.state)
        return True
    except Exception as error:
        logger.debug("KV state not restored (%s: %s)", type(error).__name__, error)
        model.n_tokens = 0
        return False


def _sequence_state(model: Any) -> Any:
    """Sequence 0's KV state as a ctypes byte array."""
    import llama_cpp

    context = model._ctx.ctx
    size = llama_cpp.llama_state_seq_get_size(context, 0)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(context, buffer, size, 0)
    if not written:
        raise RuntimeError("llama_state_seq_get_data wrote nothing")
    return (ctypes.c_uint8 * written).from_buffer(buffer) if written < size else buffer


def _set_sequence_state(model: Any, tokens: tuple[int, ...], state: Any) -> None:
    """Replace sequence 0's KV state with `state`, whose tokens are `tokens`."""
    import llama_cpp

    model._ctx.kv_cache_seq_rm(0, 0, -1)
    if llama_cpp.llama_state_seq_set_data(model._ctx.ctx, state, len(state), 0) == 0:
        raise RuntimeError("llama_state_seq_set_data refused the saved state")
    model.input_ids[: len(tokens)] = tokens
    model.n_tokens = len(tokens)
    model._requires_eval = True  # no logits for the last token: it is decoded again
