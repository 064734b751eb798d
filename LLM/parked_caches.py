"""Each conversation's KV cache kept aside while the model serves another.

llama.cpp holds one KV cache, so a server with several conversations reads
each one's history again whenever it takes its turn: a prompt only reuses
what it shares token for token with the live cache, which after another
conversation is just the system prompt.  With four sessions taking turns
(and reading their users' words ahead as they speak, LLM/llama_cpp_language_model.py)
every turn paid for its whole history, and a prompt read ahead was lost as
soon as another session spoke.  Here the live cache is saved under its
conversation's id when the model turns to another conversation, and put
back when that conversation's prompt shares at least as much with it as
with the live cache: a few milliseconds of copying instead of hundreds of
tokens evaluated.  A cache is only ever put back for the conversation that
made it, so nothing of one conversation reaches another's answers.
"""

from __future__ import annotations

import logging
import weakref
from collections import OrderedDict
from typing import Any

from conversation.session import Session
from LLM.prefix_cache import SequenceState, common_prefix, load_sequence, save_sequence

logger = logging.getLogger(__name__)

# Conversations whose caches are kept (least recently served dropped first):
# the 1.5B's cache is about 28 KiB a token, a few MiB to tens of MiB each.
MAX_PARKED = 8


class ParkedCaches:
    """The KV caches of conversations the model is not serving now, by id."""

    def __init__(self, max_parked: int = MAX_PARKED) -> None:
        self.max_parked = max_parked
        self._parked: OrderedDict[str, SequenceState] = OrderedDict()
        # Each cache's conversation, to drop those that ended (closed, or gone altogether).
        self._owners: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()
        self.live: str | None = None  # whose conversation the live cache holds
        self.restored = 0  # caches put back (for tests and logs)

    def switch(self, model: Any, session: Session, prompt: list[int]) -> bool:
        """Make the live cache `session`'s, for `prompt`: the live cache
        of another conversation is parked, and this one's parked cache put
        back when it shares at least as much of `prompt`.  Returns whether the
        live cache was already this conversation's (the KV-cache cut may then
        move its keys; `drop_evicted_tokens`)."""
        conversation = self._own(session)
        if self.live == conversation:
            return True
        if self.live is not None and model.n_tokens > 0:
            self._park(model, self.live)
        self.live = conversation
        parked = self._parked.pop(conversation, None)
        if parked is None:
            return False
        live_shares = common_prefix(list(model.input_ids[: model.n_tokens]), prompt)
        if common_prefix(list(parked.tokens), prompt) >= live_shares and load_sequence(model, parked):
            self.restored += 1
            logger.debug("KV cache of %s put back (%d tokens)", conversation, len(parked.tokens))
            return True
        return False

    def adopt(self, model: Any, session: Session) -> None:
        """The live cache is about to be replaced with one of `session`'s
        (a paused reply's): park the live one if it is another's, and drop
        this conversation's parked cache, which the new one supersedes."""
        conversation = self._own(session)
        if self.live is not None and self.live != conversation and model.n_tokens > 0:
            self._park(model, self.live)
        self._parked.pop(conversation, None)
        self.live = conversation

    @property
    def parked(self) -> tuple[str, ...]:
        """The conversations whose caches are kept aside, least recently served first."""
        return tuple(self._parked)

    def _own(self, session: Session) -> str:
        self._owners[session.id] = session
        return session.id

    def _park(self, model: Any, conversation: str) -> None:
        saved = save_sequence(model)
        if saved is None:
            return
        self._parked[conversation] = saved
        # The caches of conversations that ended (their clients left) go now:
        # they would only wait for the least-recently-served rule below,
        # holding memory a conversation still going could use.
        for name in [name for name in self._parked if (owner := self._owners.get(name)) is None or owner.closed]:
            del self._parked[name]
            logger.debug("KV cache of %s dropped: its conversation ended", name)
        while len(self._parked) > self.max_parked:
            self._parked.popitem(last=False)
