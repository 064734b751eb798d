"""Does a transcript sound finished?  The words' side of end-of-turn detection.

Silence alone cuts off a speaker who pauses to think ("What is the capital
city of ... France?").  The early transcript of the pause is ready before the
end-of-turn silence runs out, and a sentence that stops on a word that needs
a continuation (an article, a preposition, a conjunction, a possessive) or
that Whisper itself marks as trailing off ("...", a comma) is not a finished
turn: the VAD then waits longer before it ends the turn.
"""

from __future__ import annotations

import re

# English words that cannot end a finished question or statement.
DANGLING_WORDS = frozenset(
    """a an the of to in on at for with from by about into onto than as and or but nor because
    if that which whose my your his her its our their this these those very so such is are was
    were be will would can could should what who where when how why""".split()
)
# ...and those that cannot end a question either (Whisper puts a question mark
# on a question cut short: "What is the capital of?").
NEVER_LAST_WORDS = frozenset("a an the of and or but nor because if than very my your his her its our their".split())
_TRAILING_OFF = re.compile(r"(\.\.\.|…|,|;|:|-)\s*$")
_LAST_WORD = re.compile(r"([A-Za-z']+)\W*$")


def looks_unfinished(text: str, language: str | None = "en") -> bool:
    """True when the transcript stops where a speaker would go on."""
    text = text.strip()
    if not text:
        return False
    if _TRAILING_OFF.search(text):
        return True
    if (language or "en").removesuffix("-auto") != "en":
        return False  # the word list is English
    match = _LAST_WORD.search(text)
    if not match:
        return False
    return match.group(1).lower() in (NEVER_LAST_WORDS if text.endswith(("?", "!")) else DANGLING_WORDS)
