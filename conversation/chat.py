"""Conversation memory for the LLM stages, bounded so prompts stay fast."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

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


# What the model reads as the output of a call that never got one (the
# client did not answer it before the conversation went on).
NO_RESULT = json.dumps({"error": "no result: the call was not answered"})


@dataclass(frozen=True)
class CallRecord:
    """One function call the assistant made, as the chat keeps it."""

    call_id: str
    name: str
    arguments: str  # JSON text

    def message(self) -> dict[str, Any]:
        return {"id": self.call_id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class ChatItem:
    role: str
    content: str
    turn_id: int | None = None
    interrupted: bool = False
    # An assistant message that calls functions (after saying `content`, maybe nothing).
    tool_calls: tuple[CallRecord, ...] = ()
    # A function's output (role "tool"): the call it answers.
    tool_call_id: str | None = None

    @property
    def is_answer(self) -> bool:
        """An assistant reply in words, which closes an exchange (a call does not)."""
        return self.role == "assistant" and not self.tool_calls

    def message(self) -> dict[str, Any]:
        """The chat-completions message (calls and outputs in its tool format)."""
        if self.tool_call_id is not None:
            return {"role": "tool", "tool_call_id": self.tool_call_id, "content": self.content}
        if self.tool_calls:
            return {
                "role": self.role,
                # "" rather than null: servers with stricter request models
                # (llama_cpp.server) refuse an assistant message without a string.
                "content": self.content,
                "tool_calls": [call.message() for call in self.tool_calls],
            }
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

    An exchange ends with the assistant's answer in words; the function
    calls made on the way and their outputs belong to it.  Older exchanges
    are dropped whole (never half a pair, never a call without its output), and the system
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
        """The answer to the waiting user message(s) or function output(s);
        cut to what was heard if the reply was interrupted before it was stored."""
        with self._lock:
            if not self._items or self._items[-1].is_answer:
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

    def add_tool_calls(self, text: str, calls: list[CallRecord], turn_id: int | None = None) -> None:
        """The assistant called functions (after saying `text`, maybe nothing):
        the calls stay in the conversation, so later turns can refer to them."""
        with self._lock:
            self._items.append(ChatItem("assistant", text, turn_id, tool_calls=tuple(calls)))

    def add_tool_result(self, call_id: str, output: str) -> bool:
        """A function's output, placed right after the call it answers (after
        the outputs of the same message's other calls); a second output for a
        call replaces the first.  False when the chat has no such call (it was
        never made, or has been trimmed away).

        An output that comes late, once the conversation has gone on past its
        call (the user asked something else meanwhile), joins at the end, as the
        Realtime API appends an item: its call moves there with it (chat formats
        want an output right after its call), and the words said before the call
        stay where they were.  Put back in the middle, the prompt ended with the
        later exchange, and the 1.5B answered the output with a new call on that
        exchange's topic (`get_time({"city": "Paris"})` for a London forecast)."""
        with self._lock:
            for item in self._items:
                if item.tool_call_id == call_id:
                    item.content = output
                    return True
            for index in range(len(self._items) - 1, -1, -1):
                item = self._items[index]
                call = next((call for call in item.tool_calls if call.call_id == call_id), None)
                if call is None:
                    continue
                at = index + 1
                while at < len(self._items) and self._items[at].tool_call_id is not None:
                    at += 1
                if at < len(self._items):  # the conversation went on: the call and its output join at the end
                    self._move_call_to_end(index, call)
                    at = len(self._items)
                self._items.insert(at, ChatItem("tool", output, tool_call_id=call_id))
                return True
            return False

    def _move_call_to_end(self, index: int, call: CallRecord) -> None:
        """Take `call` out of the message at `index` (the message goes when
        nothing is left of it) and append it as a call message of its own."""
        item = self._items[index]
        item.tool_calls = tuple(other for other in item.tool_calls if other is not call)
        if not item.tool_calls and not item.content:
            del self._items[index]
        self._items.append(ChatItem("assistant", "", item.turn_id, tool_calls=(call,)))

    def has_call(self, call_id: str) -> bool:
        with self._lock:
            return any(call.call_id == call_id for item in self._items for call in item.tool_calls)

    def record_heard(self, turn_id: int, heard: str) -> None:
        """The user interrupted this turn's reply after hearing `heard`."""
        with self._lock:
            for index in range(len(self._items) - 1, -1, -1):
                item = self._items[index]
                if item.role == "assistant" and item.turn_id == turn_id:
                    content = interrupted_content(heard)
                    if item.tool_calls:  # the calls were made: only the words before them are cut
                        item.content, item.interrupted = content or "", True
                    elif content is None:
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
        """Forget the user messages whose answer failed, so history stays
        paired (calls and their outputs stay: they happened)."""
        with self._lock:
            while self._items and self._items[-1].role != "assistant" and self._items[-1].tool_call_id is None:
                self._items.pop()

    def messages(self) -> list[dict[str, Any]]:
        """The system prompt and the history, in the chat-completions format.

        Every call is followed by its output: one the client never sent reads
        as `NO_RESULT`, so the conversation goes on past an unanswered call
        (and chat APIs, which refuse a call without an output, accept it)."""
        out: list[dict[str, Any]] = []
        with self._lock:
            items, index = self._items, 0
            while index < len(items):
                item = items[index]
                out.append(item.message())
                index += 1
                if not item.tool_calls:
                    continue
                answered = set()
                while index < len(items) and items[index].tool_call_id is not None:
                    answered.add(items[index].tool_call_id)
                    out.append(items[index].message())
                    index += 1
                out.extend(
                    {"role": "tool", "tool_call_id": call.call_id, "content": NO_RESULT}
                    for call in item.tool_calls
                    if call.call_id not in answered
                )
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
        answers = sum(item.is_answer for item in self._items)
        while answers > self.size:
            first_answer = next(i for i, item in enumerate(self._items) if item.is_answer)
            del self._items[: first_answer + 1]
            answers -= 1
