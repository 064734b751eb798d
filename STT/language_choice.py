"""Which language a turn is in: the whole utterance's evidence, the expected languages, the conversation's habit.

Whisper names a language from one token's probabilities after the start of
its input.  Asked on a turn's first second (as a transcript followed while
spoken did), or on a short clip of acted game dialogue, it is often wrong:
Czech comes out Polish or Slovak, Dutch German or English.  Here a turn's
language is decided once, at its end, from:

- **the whole utterance**: Whisper's language probabilities on all of it;
- **the expected languages** (`--languages en,nl,cs`, or a realtime session's
  `transcription.languages`): the probabilities narrowed to those and
  renormalised, so a Czech speaker is never heard as Polish where Polish is
  not expected;
- **the conversation**: a conversation keeps its language (`ConversationLanguage`,
  in the session).  One turn that leans to another language does not move it
  unless the evidence is strong (the other language at least `switch_odds`
  times likelier); two turns in a row that lean to the same other language
  do: a speaker who really switches is followed from their second sentence,
  or from the first when it is clear.

`rescore` adds a second opinion where the first is unsure: the utterance is
decoded in each of the leading languages and the decoder's own likelihood of
its words joins the vote (Whisper writes fluent text in the language that was
spoken, and stumbles in the others).

Pure logic, no model: the STT handler supplies the probabilities and decodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# Below this, a probability is as good as none (log of 0 is avoided).
FLOOR = 1e-6


@dataclass
class ConversationLanguage:
    """One conversation's language, kept between turns (in its `Session`)."""

    language: str | None = None  # the language of the conversation so far
    challenger: str | None = None  # another language the last turn leaned to
    # The utterance decided last (its start sample) and the state before it:
    # a turn decided again (a pause's transcript, then the end of the turn)
    # counts once.
    utterance: int | None = None
    before: tuple[str | None, str | None] = (None, None)
    history: list[str] = field(default_factory=list)  # each turn's language, for the metrics

    def begin(self, utterance: int | None) -> None:
        if utterance is not None and utterance == self.utterance:
            self.language, self.challenger = self.before  # this utterance again: its last decision is undone
            if self.history:
                self.history.pop()
        else:
            self.utterance, self.before = utterance, (self.language, self.challenger)


def narrowed(probabilities: dict[str, float], allowed: Iterable[str] | None) -> dict[str, float]:
    """The probabilities of the allowed languages only, summing to one (all of
    them when `allowed` is None).  Languages Whisper did not score get the floor."""
    if allowed is None:
        chosen = dict(probabilities)
    else:
        chosen = {code: max(FLOOR, probabilities.get(code, 0.0)) for code in allowed}
    total = sum(chosen.values()) or 1.0
    return {code: value / total for code, value in chosen.items()}


def log_scores(probabilities: dict[str, float]) -> dict[str, float]:
    return {code: math.log(max(FLOOR, value)) for code, value in probabilities.items()}


@dataclass(frozen=True)
class LanguagePolicy:
    """How a turn's language is chosen (see the module's docstring).

    `switch_odds`: how much likelier another language must be, in one turn,
    to move the conversation to it.  `rescore_below`: when the leading
    language's share is below this, the leading `rescore_count` languages are
    decoded and compared (0: never).  `decode_weight`: how much the decoder's
    average log-likelihood per token counts beside the language token's log-probability.
    """

    allowed: tuple[str, ...] | None = None
    switch_odds: float = 20.0
    rescore_below: float = 0.0
    rescore_count: int = 2
    decode_weight: float = 1.0

    def scores(
        self,
        probabilities: dict[str, float],
        decode_likelihood: Callable[[str], float] | None = None,
        allowed: tuple[str, ...] | None = None,
        also: str | None = None,
    ) -> dict[str, float]:
        """Log-scores of the candidate languages for one utterance.
        `decode_likelihood(code)`: the decoder's average log-likelihood per
        token when told the utterance is in `code`; asked only when the
        language vote is unsure, for the leading languages (and `also`, the
        conversation's language)."""
        shares = narrowed(probabilities, allowed if allowed is not None else self.allowed)
        scores = log_scores(shares)
        ranked = sorted(shares, key=shares.get, reverse=True)
        if decode_likelihood is None or not ranked or shares[ranked[0]] >= self.rescore_below:
            return scores
        contenders = ranked[: self.rescore_count]
        if also is not None and also in shares and also not in contenders:
            contenders.append(also)
        return {code: scores[code] + self.decode_weight * decode_likelihood(code) for code in contenders}

    def decide(self, scores: dict[str, float], conversation: ConversationLanguage | None = None) -> str:
        """The turn's language; the conversation (if given) moves to it only
        on strong evidence or a second turn in a row."""
        best = max(scores, key=scores.get)
        if conversation is None:
            return best
        current = conversation.language
        if current is None or current not in scores or best == current:
            chosen = best
        elif scores[best] - scores[current] >= math.log(self.switch_odds) or conversation.challenger == best:
            chosen = best
        else:
            chosen = current
        conversation.challenger = best if best != chosen else None
        conversation.language = chosen
        conversation.history.append(chosen)
        return chosen


def parse_languages(spec: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """'en, nl,cs' -> ('en', 'nl', 'cs'); empty -> None (any language)."""
    if spec is None:
        return None
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    codes = tuple(dict.fromkeys(code.strip().lower() for code in items if code.strip()))
    return codes or None
