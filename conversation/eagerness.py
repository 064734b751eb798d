"""`semantic_vad` eagerness as the end-of-turn settings of one conversation.

The realtime API's semantic turn detection waits longer for a speaker who
sounds unfinished: `low` waits longest, `high` answers soonest, `auto` is
`medium`.  Under the default `--turn_detector evidence` the eagerness is the
bar the odds that the turn is over must pass (VAD/end_of_turn.py); the words
(the early transcript stops on "of", "and", a comma: VAD/turn_end.py) and
Smart Turn's ear are its evidence.  Words that dangle are always waited for
at least as long as this table says, and under the `smart-turn` and
`silence` detectors the table's waits are all there is.  This is the only
place that maps eagerness onto those waits.
"""

from __future__ import annotations

from conversation.session import TurnDetection

# eagerness -> (silence after words that dangle, silence after a voice Smart
# Turn hears as finished), in ms; None: the server's flags
# (--unfinished_silence_ms 900, --finished_silence_ms 150).
EAGERNESS_MS: dict[str, tuple[int | None, int | None]] = {
    "low": (2000, 300),
    "medium": (None, None),
    "auto": (None, None),
    "high": (500, 100),
}


def semantic_turn_detection(
    eagerness: str, create_response: bool = True, interrupt_response: bool = True
) -> TurnDetection:
    """The TurnDetection of a `semantic_vad` session (no fixed silence: the
    evidence decides)."""
    unfinished, finished = EAGERNESS_MS[eagerness]
    return TurnDetection(
        create_response=create_response,
        interrupt_response=interrupt_response,
        eagerness=eagerness,
        unfinished_silence_ms=unfinished,
        finished_silence_ms=finished,
    )
