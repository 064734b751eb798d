"""Conversation memory for the LLM stages, bounded so prompts stay fast."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# Whisper language codes the LLM is told to answer in (anything else: no hint).
LANGUAGE_NAMES = {
    "en": "English", "fr": "French", "es": "Spanish", "de": "German", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "cs": "Czech", "pl": "Polish", "ru": "Russian",
    "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "hi": "Hindi", "ar": "Arabic",
    "tr": "Turkish", "sv": "Swedish", "da": "Danish", "fi": "Finnish", "uk": "Ukrainian",
}  # fmt: skip


def language_instruction(language: str | None, english_too: bool = False) -> str:
    """A prefix asking for a reply in the speaker's language, when it is known
    and not English (the default prompt already gets English replies); with
    `english_too`, for English as well: a conversation's own instructions may
    be written in another language, and the model would answer in theirs."""
    code = (language or "").removesuffix("-auto")
    if code == "" or (code == "en" and not english_too):
        return ""
    name = LANGUAGE_NAMES.get(code)
    # Not "Please reply to my message in Czech.": before a garbled line the
    # 1.5B default read that as a request to translate, and answered "Sure, I
    # can translate that message to Czech for you..." (then copied the pattern
    # from its history); saying who speaks what, and not to translate, it answers.
    return f"(I speak {name}: answer me in {name}, do not translate.) " if name else ""


@dataclass
class ChatItem:
    role: str
    content: str
    turn_id: int | None = None
    interrupted: bool = False

    def message(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def interrupted_content(heard: str) -> str | None:
    """What the model is told it said when the user cut it off: the words the
    user heard ("You could read…" when cut mid-sentence), so the next reply does not
    assume the rest; None when nothing was heard (as far as the user knows,
    that reply never happened).

    No note in words ("[interrupted: ...]"): a small model copies what its
    earlier turns look like, and with such notes in the history the 1.5B
    default began answering every question with the note itself (measured in
    a local-mode barge-in run: after four interruptions, all seven following
    replies were "[interrupted: the user heard none of this]")."""
    words = heard.strip()
    if not words:
        return None
    return words if words.endswith((".", "!", "?", "…")) else words + "…"  # cut mid-sentence: it trails off


@dataclass
class Chat:
    """System prompt plus the last `size` user/assistant exchanges.

    Older exchanges are dropped whole (never half a pair), and the system
    prompt is never dropped, so the model keeps its instructions however long
    the conversation runs.  Messages carry the turn they belong to, so an
    interrupted reply can be cut to what the user heard (`record_heard`),
    whether the LLM stored it already or is still generating it.  Several
    threads touch one conversation (LLM, sink, the realtime front door), so
    every change takes the lock.
    """

    size: int = 2
    system_prompt: str | None = None
    system_role: str = "system"
    _items: list[ChatItem] = field(default_factory=list)
    _heard: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_user(self, text: str, role: str = "user", turn_id: int | None = None) -> None:
        """A user message waiting for its answer (several may wait: typed items)."""
        with self._lock:
            self._items.append(ChatItem(role, text, turn_id))

    def add_assistant(self, text: str, turn_id: int | None = None) -> None:
        """The answer to the waiting user message(s); cut to what was heard if
        the reply was interrupted before it was stored."""
        with self._lock:
            if not self._items or self._items[-1].role == "assistant":
                return  # nothing asked (the question failed or was withdrawn)
            heard = self._heard.pop(turn_id, None) if turn_id is not None else None
            item = ChatItem("assistant", text, turn_id)
            if heard is not None:
                content = interrupted_content(heard)
                if content is None:
                    return  # cut before a word of it was heard: the user's question stands unanswered
                item.content, item.interrupted = content, True
            self._items.append(item)
            self._trim()

    def record_heard(self, turn_id: int, heard: str) -> None:
        """The user interrupted this turn's reply after hearing `heard`."""
        with self._lock:
            for index in range(len(self._items) - 1, -1, -1):
                item = self._items[index]
                if item.role == "assistant" and item.turn_id == turn_id:
                    content = interrupted_content(heard)
                    if content is None:
                        del self._items[index]
                    else:
                        item.content, item.interrupted = content, True
                    return
            self._heard[turn_id] = heard
            while len(self._heard) > 8:
                self._heard.pop(next(iter(self._heard)))

    def forget(self, turn_id: int) -> None:
        """A turn withdrawn before its reply was heard (the speaker went on
        after a pause): its question and answer leave the history, even when
        the answer was already stored."""
        with self._lock:
            self._items = [item for item in self._items if item.turn_id != turn_id]
            self._heard.pop(turn_id, None)

    def discard_pending(self) -> None:
        """Forget the user messages whose answer failed, so history stays paired."""
        with self._lock:
            while self._items and self._items[-1].role != "assistant":
                self._items.pop()

    def messages(self) -> list[dict[str, str]]:
        with self._lock:
            out = [item.message() for item in self._items]
        if self.system_prompt:
            out.insert(0, {"role": self.system_role, "content": self.system_prompt})
        return out

    def reset(self) -> None:
        with self._lock:
            self._items.clear()
            self._heard.clear()

    def _trim(self) -> None:
        if self.size < 0:
            return
        answers = sum(item.role == "assistant" for item in self._items)
        while answers > self.size:
            first_answer = next(i for i, item in enumerate(self._items) if item.role == "assistant")
            del self._items[: first_answer + 1]
            answers -= 1
