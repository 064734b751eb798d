"""When has the speaker finished?  One decision from everything a pause tells.

A fixed silence (the seed's 300 ms) is wrong both ways: too long after
"What is the capital of France?", too short for "What is the capital city
of ... France?".  At each moment of a pause the VAD knows more than the
silence so far: the words of the early transcript (a finished sentence, one
that stops on "of", or nothing yet), Smart Turn's ear for a finished voice
(where installed), and how this speaker pauses inside a turn.  They are
combined as odds that the turn is over:

    odds = prior odds x what the words say x what the voice says
           / P(one of this speaker's pauses inside a turn lasts this long)

The first three are a logistic regression on the turn benchmark's pauses
(the 537 pauses of 64 ms or more in its 281 clips, inside a turn or at its
end, with the evidence each had): a statement's end mark counts for the end,
a dangling last word strongly against it, and Smart Turn's voice, on these
read and synthetic clips, little.  The last one is the silence's share:
pauses inside a turn are mostly short, so the longer the silence, the less
likely it is one of them.  Their lengths follow a log-normal law (median 180
ms, the natural pauses of the benchmark's human clips lengthened towards
spontaneous speech), whose median this speaker's own pauses move
(`PauseHabits`): someone who stops for 600 ms mid-sentence is waited for
longer than someone who never pauses.  The turn ends when the odds pass the
bar that the session's eagerness sets (benchmarks/RESULTS_turn_detection.md
has the curve); a cut that still happens is repaired by the join window
(speech resuming before the reply is heard joins its turn).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from statistics import NormalDist

from VAD.turn_end import looks_unfinished


class Words(Enum):
    UNKNOWN = "not known yet"
    QUESTION = "a finished question"
    STATEMENT = "a finished statement"
    NO_END_MARK = "no end mark"  # Whisper heard no end of sentence
    UNFINISHED = "stops mid-sentence"  # on "of", "the", "and", a comma, "..."


def words_evidence(transcript: str | None, language: str | None) -> Words:
    """What the early transcript of a pause says about the turn.

    The end marks' weights were fitted on English turns, together with
    English's dangling words: in another language Whisper puts a full stop
    after whatever fragment it heard, and no word list says the fragment
    dangles, so a mark there counts for nothing (a trailing "..." or comma
    still says the speaker goes on, in any language)."""
    text = (transcript or "").strip()
    if not text:
        return Words.UNKNOWN
    if looks_unfinished(text, language):
        return Words.UNFINISHED
    if (language or "en").removesuffix("-auto") != "en":
        return Words.NO_END_MARK
    if text.endswith("?"):
        return Words.QUESTION
    return Words.STATEMENT if text.endswith((".", "!", "。")) else Words.NO_END_MARK


# The law of pauses inside a turn, from the turn benchmark's clips: ln(ms) is
# normal with this mean and spread, over pauses of at least SHORTEST_PAUSE_MS.
PAUSE_LOG_MEDIAN = math.log(180.0)
PAUSE_LOG_SPREAD = 0.7
SHORTEST_PAUSE_MS = 64.0
HABIT_PRIOR_WEIGHT = 4.0  # the population's median counts as this many of the speaker's own pauses

# Log-odds from the same pauses: at the end of a turn vs inside one.
PRIOR_LOG_ODDS = 0.0
WORDS_LOG_ODDS = {
    Words.UNKNOWN: 0.0,
    Words.QUESTION: 0.3,
    Words.STATEMENT: 0.7,
    Words.NO_END_MARK: 0.0,
    Words.UNFINISHED: -2.1,
}
VOICE_WEIGHT = 0.2  # per unit of Smart Turn's logit, its probability kept within 0.05..0.95
VOICE_CLIP = 0.05

# Eagerness: the odds' bar (as a probability that the turn is over), and the
# longest silence ever waited (the realtime API's semantic_vad caps its waits too).
EAGERNESS = {
    "low": (0.9, 3000.0),
    "medium": (0.8, 2000.0),
    "high": (0.7, 1200.0),
}
EAGERNESS["auto"] = EAGERNESS["medium"]
SHORTEST_WAIT_MS = 96.0  # three VAD windows: never less


class PauseHabits:
    """How one speaker pauses inside turns, learned in the conversation: the
    median of the log-normal law moves towards the speaker's own pauses."""

    def __init__(self) -> None:
        self._sum = HABIT_PRIOR_WEIGHT * PAUSE_LOG_MEDIAN
        self._count = HABIT_PRIOR_WEIGHT

    def observe(self, pause_ms: float) -> None:
        """A pause inside a turn: speech went on after it (or joined its turn)."""
        if pause_ms >= SHORTEST_PAUSE_MS:
            self._sum += math.log(pause_ms)
            self._count += 1

    @property
    def log_median(self) -> float:
        return self._sum / self._count

    def outlasting(self, pause_ms: float) -> float:
        """P(a pause inside a turn lasts at least `pause_ms` | it is a pause at all)."""
        law = NormalDist(self.log_median, PAUSE_LOG_SPREAD)
        shortest = 1.0 - law.cdf(math.log(SHORTEST_PAUSE_MS))
        return min(1.0, (1.0 - law.cdf(math.log(max(pause_ms, 1.0)))) / shortest)

    def silence_outlasted_by(self, share: float) -> float:
        """The silence that only `share` of this speaker's pauses inside a turn outlast."""
        law = NormalDist(self.log_median, PAUSE_LOG_SPREAD)
        shortest = 1.0 - law.cdf(math.log(SHORTEST_PAUSE_MS))
        tail = min(max(share * shortest, 1e-12), 1.0 - 1e-12)
        return math.exp(law.inv_cdf(1.0 - tail))


@dataclass(frozen=True)
class EndOfTurn:
    """The decision for one eagerness."""

    eagerness: str = "auto"

    def __post_init__(self) -> None:
        if self.eagerness not in EAGERNESS:
            raise ValueError(f"eagerness must be one of {', '.join(EAGERNESS)}, not {self.eagerness!r}")

    def evidence_log_odds(self, words: Words, voice_finished: float | None) -> float:
        """The odds that the turn is over before the silence is counted."""
        odds = PRIOR_LOG_ODDS + WORDS_LOG_ODDS[words]
        if voice_finished is not None:
            p = min(max(voice_finished, VOICE_CLIP), 1 - VOICE_CLIP)
            odds += VOICE_WEIGHT * math.log(p / (1 - p))
        return odds

    def silence_needed_ms(self, words: Words, voice_finished: float | None, habits: PauseHabits) -> float:
        """How long the silence must last for the turn to be over, given what is known now."""
        bar, longest = EAGERNESS[self.eagerness]
        missing = math.log(bar / (1 - bar)) - self.evidence_log_odds(words, voice_finished)
        if missing <= 0:
            return SHORTEST_WAIT_MS
        # odds / outlasting(t) >= bar  <=>  outlasting(t) <= exp(-missing)
        return min(longest, max(SHORTEST_WAIT_MS, habits.silence_outlasted_by(math.exp(-missing))))
