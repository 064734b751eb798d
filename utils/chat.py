"""Conversation memory for the LLM stages, bounded so prompts stay fast."""

from __future__ import annotations

from dataclasses import dataclass, field

# Whisper language codes the LLM is told to answer in (anything else: no hint).
LANGUAGE_NAMES = {
    "en": "English", "fr": "French", "es": "Spanish", "de": "German", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "cs": "Czech", "pl": "Polish", "ru": "Russian",
    "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "hi": "Hindi", "ar": "Arabic",
    "tr": "Turkish", "sv": "Swedish", "da": "Danish", "fi": "Finnish", "uk": "Ukrainian",
}  # fmt: skip


def language_instruction(language: str | None) -> str:
    """A prefix asking for a reply in the speaker's language, when it is known
    and not English (the default prompt already gets English replies)."""
    code = (language or "").removesuffix("-auto")
    if code in ("", "en"):
        return ""
    name = LANGUAGE_NAMES.get(code)
    return f"Please reply to my message in {name}. " if name else ""


@dataclass
class Chat:
    """System prompt plus the last `size` user/assistant exchanges.

    Older exchanges are dropped whole (never half a pair), and the system
    prompt is never dropped, so the model keeps its instructions however long
    the conversation runs.
    """

    size: int = 2
    system_prompt: str | None = None
    system_role: str = "system"
    _exchanges: list[tuple[dict[str, str], dict[str, str]]] = field(default_factory=list)
    _pending_user: dict[str, str] | None = None

    def add_user(self, text: str, role: str = "user") -> None:
        self._pending_user = {"role": role, "content": text}

    def add_assistant(self, text: str) -> None:
        if self._pending_user is None:
            return
        self._exchanges.append((self._pending_user, {"role": "assistant", "content": text}))
        self._pending_user = None
        if self.size >= 0:
            del self._exchanges[: max(0, len(self._exchanges) - self.size)]

    def discard_pending(self) -> None:
        """Forget a user message whose answer failed, so history stays paired."""
        self._pending_user = None

    def messages(self) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        if self.system_prompt:
            out.append({"role": self.system_role, "content": self.system_prompt})
        for user, assistant in self._exchanges:
            out.extend((user, assistant))
        if self._pending_user is not None:
            out.append(self._pending_user)
        return out

    def reset(self) -> None:
        self._exchanges.clear()
        self._pending_user = None
