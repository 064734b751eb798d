"""The realtime API's places for language: what a client sets, what it is told.

A client fixes the language it speaks, or narrows what detection may choose,
with `session.update` → `audio.input.transcription.language` (one ISO 639-1
code, Whisper's, or "auto" to detect it) and `.languages` (a list, which
means detection among those), as in the API's own transcription settings;
`transcription: null` goes back to the server's `--language` and `--languages`.
The transcript's language goes out in the completed transcription event's
`languages`, and the reply's language and voice in its
`response.done` as `response.metadata` (`{"language": "nl", "voice": ...}`):
the API has no field of its own for either.
"""

from __future__ import annotations

from typing import Any

from config.checks import whisper_language_problem
from conversation.session import SessionSettings
from conversation.turn import Turn

AUTO = ("auto", "")


def apply_transcription(settings: SessionSettings, transcription: Any) -> tuple[str, str] | None:
    """Take a `session.update`'s transcription settings into the session;
    (param, problem) when a language code is not one Whisper knows, and then
    nothing changes."""
    if transcription is None:
        settings.language, settings.languages = None, None
        return None
    fields = transcription.model_fields_set
    language = settings.language
    if "language" in fields:
        language = transcription.language or None
        problem = whisper_language_problem(language)
        if problem is not None:
            return "session.audio.input.transcription.language", problem.replace("--language", "language")
    languages = settings.languages
    if "languages" in fields:
        languages = tuple(transcription.languages) if transcription.languages else None
        for code in languages or ():
            problem = whisper_language_problem(code)
            if problem is not None or code in AUTO:
                return "session.audio.input.transcription.languages", f"{code!r} is not a language code Whisper knows"
    settings.language, settings.languages = language, languages
    return None


def reply_metadata(turn: Turn) -> dict[str, str] | None:
    """`response.metadata` for a reply: the language it was asked in and the voice that spoke it."""
    metadata = {"language": turn.reply_language or turn.language, "voice": turn.voice}
    kept = {key: value for key, value in metadata.items() if value}
    return kept or None
