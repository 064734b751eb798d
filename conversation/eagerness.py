"""`semantic_vad` eagerness as the end-of-turn settings of one conversation.

The realtime API's semantic turn detection waits longer for a speaker who
sounds unfinished: `low` waits longest, `high` answers soonest, `auto` is
`medium`.  Here the words decide what "unfinished" is (the early transcript
stops on "of", "and", a comma: VAD/turn_end.py) and Smart Turn the voice,
where the server runs it; eagerness only sets how long each kind of pause
is waited for, through the session's `TurnDetection` knobs (None keeps the
server's flag).  This is the only place that knows the mapping.
"""

from __future__ import annotations

from conversation.session import TurnDetection

# eagerness -> (silence that ends a turn, silence after words that dangle,
# silence after a voice Smart Turn hears as finished), in ms; None: the server's flags
# (--min_silence_ms 300, --unfinished_silence_ms 900, --finished_silence_ms 150).
EAGERNESS_MS: dict[str, tuple[int | None, int | None, int | None]] = {
    "low": (600, 2000, 300),
    "medium": (None, None, None),
    "auto": (None, None, None),
    "high": (200, 500, 100),
}


def semantic_turn_detection(
    eagerness: str, create_response: bool = True, interrupt_response: bool = True
) -> TurnDetection:
    """The TurnDetection of a `semantic_vad` session."""
    silence, unfinished, finished = EAGERNESS_MS[eagerness]
    return TurnDetection(
        silence_duration_ms=silence,
        create_response=create_response,
        interrupt_response=interrupt_response,
        eagerness=eagerness,
        unfinished_silence_ms=unfinished,
        finished_silence_ms=finished,
    )
