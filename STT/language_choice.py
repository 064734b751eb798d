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
  in the session): its belief about the language is carried from turn to
  turn, and each turn's evidence updates it, weighed by how much was said.
  One short or unclear turn that leans elsewhere does not move it; a clear
  one, or two leaning the same way, does: a speaker who really switches is
  followed.

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
    """One conversation's belief about its language, kept between turns (in its `Session`)."""

    belief: dict[str, float] = field(default_factory=dict)  # language -> probability, after the last turn
    # The utterance decided last (its start sample) and the belief before it:
    # a turn decided again (a pause's transcript, then the end of the turn)
    # counts once.
    utterance: int | None = None
    before: dict[str, float] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)  # each turn's language

    @property
    def language(self) -> str | None:
        """The conversation's language so far (None before its first turn)."""
        return max(self.belief, key=self.belief.get) if self.belief else None

    def begin(self, utterance: int | None) -> None:
        if utterance is not None and utterance == self.utterance:
            self.belief = dict(self.before)  # this utterance again: its last decision is undone
            if self.history:
                self.history.pop()
        else:
            self.utterance, self.before = utterance, dict(self.belief)


# Close relatives that Whisper names for one another (Czech speech comes out
# Polish or Slovak, Dutch German or Afrikaans).  English is in none: Whisper
# knows it best, and English speech it hears as German is not Dutch.
RELATIVES = (
    frozenset({"cs", "sk", "pl"}),
    frozenset({"ru", "uk", "be"}),
    frozenset({"sl", "hr", "sr", "bs", "mk", "bg"}),
    frozenset({"nl", "af", "de", "lb", "yi"}),
    frozenset({"da", "no", "nn", "sv", "is", "fo"}),
    frozenset({"es", "pt", "gl", "ca"}),
    frozenset({"hi", "ur"}),
    frozenset({"ms", "id", "jw", "su"}),
)


def with_relatives(probabilities: dict[str, float], allowed: Iterable[str]) -> dict[str, float]:
    """Each expected language also gets the probability Whisper gave its close
    relatives that are not expected, where it is the only expected one among
    them: with `--languages en,nl,cs`, a line Whisper hears as 89% Polish is
    evidence for Czech, not for nothing.  On Whisper base's votes for the
    human clips, with `--languages en,nl,cs`: each 2-8 s line alone, Dutch
    35 -> 40 of 58, Czech 31 -> 35 of 41, English 52 of 52 (of all 164
    English clips one, the 0.7 s word "pipe" heard as Polish, turns Czech);
    all clips of a language as one conversation, Dutch 54 -> 59 of 60, Czech
    57 -> 60 of 60, English 164 of 164."""
    allowed = set(allowed)
    result = dict(probabilities)
    for family in RELATIVES:
        kin = family & allowed
        if len(kin) == 1:
            (expected,) = kin
            heard = sum(probabilities.get(code, 0.0) for code in family - allowed)
            result[expected] = result.get(expected, 0.0) + heard
    return result


def narrowed(probabilities: dict[str, float], allowed: Iterable[str] | None) -> dict[str, float]:
    """The probabilities of the allowed languages only, summing to one (all of
    them when `allowed` is None).  Languages Whisper did not score get the floor."""
    if allowed is None:
        chosen = dict(probabilities)
    else:
        chosen = {code: max(FLOOR, probabilities.get(code, 0.0)) for code in allowed}
    total = sum(chosen.values()) or 1.0
    return {code: value / total for code, value in chosen.items()}


@dataclass(frozen=True)
class LanguagePolicy:
    """How a turn's language is chosen (see the module's docstring).

    A conversation's belief is a forward filter over its turns (a hidden
    Markov model whose state is the language): before each turn, the speaker
    keeps the language with probability 1 - `switch_rate`, and each other
    candidate gets `switch_rate` of prior weight; the turn's evidence (its scores, weighed by
    `evidence_weight` and by how much speech there was, up to `full_evidence_s`)
    then updates it, and the turn's language is the most believed one.  An
    unclear turn (flat evidence) hardly moves the belief; a clear one, or two
    leaning the same way, does.

    `rescore_below`: with no expected languages, when the leading language's
    share is below this, the leading `rescore_count` languages are also
    decoded and the decoder's average log-likelihood per token (times
    `decode_weight`) joins the scores (0: never); only for utterances of
    `rescore_from_s` or more.  A shorter one is a word or two ("six", "G",
    "minutes"), which the decoder writes as fluently in any language (one
    token in Japanese or Hindi is as likely as in English): on the 109
    English clips under 2 s in `../shared/audio/human/` the decode turned 11
    right votes wrong and 1 wrong vote right, all of them under 1.25 s,
    while it decides Czech against Polish from 1.6 s on.

    The defaults were chosen on the Dutch, Czech and English clips of
    `../shared/audio/human/` (benchmarks/RESULTS_languages.md): Whisper base
    calls many acted Dutch lines English and Czech ones Polish, confidently,
    so one turn's vote counts for little (`evidence_weight` 0.5, a floor of
    0.03) and the conversation keeps its language turn to turn (a 1% prior
    for a switch to any other language before each turn).
    """

    allowed: tuple[str, ...] | None = None
    switch_rate: float = 0.01
    evidence_weight: float = 0.5
    evidence_floor: float = 0.03
    full_evidence_s: float = 2.0
    rescore_below: float = 0.95
    rescore_count: int = 2
    rescore_from_s: float = 1.5
    decode_weight: float = 10.0

    def scores(
        self,
        probabilities: dict[str, float],
        decode_likelihood: Callable[[str], float] | None = None,
        allowed: tuple[str, ...] | None = None,
        also: str | None = None,
        speech_s: float | None = None,
    ) -> dict[str, float]:
        """Log-evidence for each candidate language of one utterance.

        Whisper's probability of each allowed language (with its close
        relatives' that are not allowed, `with_relatives`), plus `evidence_floor`:
        its language vote is sometimes confidently wrong, and where it gives
        every expected language almost nothing (it heard none of them), their
        ratios are noise, which the floor keeps from deciding anything.
        `decode_likelihood(code)`: the decoder's average log-likelihood per
        token when told the utterance is in `code`; asked only when the vote
        is unsure (the leading allowed language's share below `rescore_below`),
        for the leading `rescore_count` languages and `also` (the
        conversation's language), and only where there were `rescore_from_s`
        of speech (`speech_s`; None: enough); the others rank below them."""
        allowed = allowed if allowed is not None else self.allowed
        if allowed is not None:
            probabilities = with_relatives(probabilities, allowed)
        candidates = list(allowed) if allowed is not None else list(probabilities)
        scores = {code: math.log(probabilities.get(code, 0.0) + self.evidence_floor) for code in candidates}
        shares = narrowed(probabilities, candidates)
        ranked = sorted(shares, key=shares.get, reverse=True)
        # Narrowed to the expected languages, the look-alikes that decoding
        # tells apart (Polish for Czech) are gone already, and decoding the
        # rest cost Dutch turns to English (measured: 57 -> 51 of 58).
        too_short = speech_s is not None and speech_s < self.rescore_from_s
        if decode_likelihood is None or allowed is not None or too_short:
            return scores
        if not ranked or shares[ranked[0]] >= self.rescore_below:
            return scores
        contenders = ranked[: self.rescore_count]
        if also is not None and also in scores and also not in contenders:
            contenders.append(also)
        rescored = {code: scores[code] + self.decode_weight * decode_likelihood(code) for code in contenders}
        lowest = min(rescored.values())
        return {code: rescored.get(code, min(lowest, scores[code]) - 1.0) for code in scores}

    def decide(
        self, scores: dict[str, float], conversation: ConversationLanguage | None = None, speech_s: float | None = None
    ) -> str:
        """The turn's language, and the conversation's belief updated with this turn's evidence."""
        if conversation is None:
            return max(scores, key=scores.get)
        weight = self.evidence_weight * (1.0 if speech_s is None else min(1.0, speech_s / self.full_evidence_s))
        top = max(scores.values())
        evidence = {code: math.exp(weight * (score - top)) for code, score in scores.items()}
        if conversation.belief:
            # Any language may be switched to; how many there are does not
            # make a switch to one of them less likely (with 99 candidates, an
            # even share made a Dutch speaker wait for their fourth clear turn).
            prior = {
                code: (1 - self.switch_rate) * conversation.belief.get(code, 0.0) + self.switch_rate
                for code in evidence
            }
        else:
            prior = dict.fromkeys(evidence, 1.0)
        posterior = {code: evidence[code] * prior[code] for code in evidence}
        total = sum(posterior.values()) or 1.0
        conversation.belief = {code: value / total for code, value in posterior.items() if value / total > FLOOR}
        chosen = conversation.language or max(scores, key=scores.get)
        conversation.history.append(chosen)
        return chosen


def parse_languages(spec: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """'en, nl,cs' -> ('en', 'nl', 'cs'); empty -> None (any language)."""
    if spec is None:
        return None
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    codes = tuple(dict.fromkeys(code.strip().lower() for code in items if code.strip()))
    return codes or None
