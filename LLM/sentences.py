"""Cut a stream of LLM tokens into sentences, releasing each as soon as it is done.

TTS needs whole sentences to sound natural, but waiting for the full reply
would add the LLM's whole generation time to the latency.  A sentence is
released when the Punkt tokenizer sees a later sentence start behind it, i.e.
"Paris. It" releases "Paris." — the tokenizer, not a bare full-stop test,
decides, so "Dr. Smith" or "3.5" do not split a sentence.

The reply's first sentence may go out earlier still: with `first_clause_words`
set, its first clause ("For a long train ride,") is released as soon as the
clause mark and the next word have arrived, so the TTS starts speaking while
the LLM finishes the sentence; with `first_phrase_words`, a first sentence
without a clause mark is cut before a word that opens a phrase ("Walking from
the train station | to the old town").  Only the first: later sentences are
spoken whole, for their intonation, while the first one plays.

The first piece also has a floor, `first_piece_words`: a short first sentence
("Certainly!", "Sure.", "Great question!") is not sent alone but waits for the
words behind it, up to the next sentence end, clause mark or phrase cut that
makes the piece long enough.  Said alone, it was followed by silence for as
long as the LLM took to write the next sentence (1.7-4.4 s seen on slow or
busy 2-core machines): a filler, then dead air.  A reply shorter than the
floor still goes out whole at its end.

Later sentences are cut the same way only when the listener is about to run
out of audio (`hurry`, from the answer loop's view of the reply's playback):
on a machine where the LLM writes barely faster than the voice speaks, the
next clause is heard instead of a pause while the rest of its sentence is
written.

Cuts follow the reply's language (`rules_for`): Dutch "bijv." and Czech
"např." do not end a sentence, and a first phrase is cut before a Dutch "met"
or a Czech "protože" as before an English "with".  A language without rules
of its own gets English's abbreviations and clause marks, and no phrase cuts.

nltk's Punkt tokenizer is instantiated directly (default parameters plus the
language's common abbreviations); nltk's data downloader is never called: it
fails offline.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from LLM.spoken_languages import base_language
from LLM.spoken_text import strip_markdown


def _import_punkt() -> tuple[type, type]:
    """nltk's Punkt classes, without the scipy.stats that nltk's package loads for nothing.

    Importing anything from nltk runs its package `__init__`, which imports
    its collocation metrics, which import `scipy.stats` when scipy is
    installed: 0.6 s of CPU at every start for a statistics test s2s never
    calls.  Those metrics fall back (raising only if called) when the import
    fails, so scipy.stats is hidden while nltk loads, unless something has
    already loaded it; anything may import it normally afterwards.
    """
    hide = "scipy.stats" not in sys.modules
    if hide:
        sys.modules["scipy.stats"] = None  # type: ignore[assignment]  # the import machinery's "not here"
    try:
        from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    finally:
        if hide:
            del sys.modules["scipy.stats"]
    return PunktParameters, PunktSentenceTokenizer


PunktParameters, PunktSentenceTokenizer = _import_punkt()

# Abbreviations that end in a full stop without ending the sentence, per
# language (lower case, without the last full stop, as Punkt stores them).
_ABBREVIATIONS = {
    "en": {
        "dr", "mr", "mrs", "ms", "prof", "st", "vs", "etc", "e.g", "i.e", "jr", "sr",
        "inc", "ltd", "co", "no", "fig", "approx", "dept", "u.s", "a.m", "p.m",
    },
    "nl": {
        "bijv", "bv", "d.w.z", "o.a", "enz", "m.a.w", "dhr", "mevr", "ca", "nr", "incl", "excl", "a.u.b",
        "ong", "evt", "i.p.v", "z.g.a.n", "mr", "dr", "prof", "blz", "resp", "vgl", "zgn", "t.o.v", "e.d",
    },
    "cs": {
        "např", "tj", "atd", "apod", "tzv", "mj", "resp", "č", "sv", "str", "hod", "min", "tis", "mil", "mld",
        "př", "n", "l", "p", "pí", "ing", "mgr", "dr", "prof", "doc", "ul", "tel", "kap", "obr", "viz", "cca",
    },
}  # fmt: skip

# A clause mark followed by a space and the start of the next word: "ride, a".
# The space rules out "3,000" and "10:30"; the next word rules out a mark that
# ends the sentence's last clause.
_CLAUSE_END = re.compile(r"[,;:](?=\s+\w)|\s[-–—](?=\s+\w)")
# Words that open a phrase (conjunctions, prepositions, relative words): a
# speaker can pause before them.  Matched whole, once the word after them has
# started, so "to" is not the start of "tomorrow".
_PHRASE_OPENERS = {
    "en": "and but or so because since while when where which who whose whom if unless although though whether "
    "with without for from to in on at by about into onto through during before after between under over "
    "across along around against until like",
    "nl": "en maar of want omdat doordat terwijl wanneer als toen waar waarin waarbij die dat wie wiens indien "
    "hoewel ofschoon met zonder voor naar in op bij door over tijdens na tussen onder boven tegen tot "
    "langs rond sinds vanaf zoals",
    "cs": "a ale nebo protože když kde který která které jež kdo co pokud ačkoli i s se z ze do na v ve pro o "
    "k ke po před za od u při mezi pod nad proti přes během kolem jako až",
}
# A phrase does not end on these (articles, determiners, "of"): "the | of", "5 | to 10".
_NO_PHRASE_END = {
    "en": "a an the my your his her its our their this these those some any no every each of",
    "nl": "de het een mijn jouw je zijn haar ons onze hun deze die dit dat elk elke geen van",
    "cs": "ten ta to ty ti tento tato toto můj moje tvůj jeho její náš naše váš vaše jejich každý žádný",
}
# One "word" for counting: a run of letters between spaces, or one character
# of a script written without spaces (Chinese, Japanese), so that a reply in
# those languages is not held back as one endless word.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(f"[{_UNSPACED}]|[^\\s{_UNSPACED}]+")
# A later sentence cut early because the listener's audio is running out
# (`hurry`) keeps at least this many words in the piece it sends.
HURRIED_CLAUSE_WORDS = 4
HURRIED_PHRASE_WORDS = 5
_NUMBER = re.compile(r"^[\d.,:%$€£+-]*\d[\d.,:%$€£+-]*$")
_LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-•*])\s*$")


@dataclass(frozen=True)
class SentenceRules:
    """Where one language's sentences and phrases may be cut: its
    abbreviations (for Punkt), the words a phrase opens with, and the words
    one never ends on.  Languages without rules of their own get English's
    punctuation handling and no phrase cuts inside words we do not know."""

    language: str
    abbreviations: frozenset[str]
    phrase_start: re.Pattern[str] | None
    no_phrase_end: frozenset[str]

    def tokenizer(self) -> PunktSentenceTokenizer:
        params = PunktParameters()
        params.abbrev_types = set(self.abbreviations)
        return PunktSentenceTokenizer(params)


def _phrase_start(openers: str) -> re.Pattern[str]:
    return re.compile(r"\s(?=(?:" + "|".join(openers.split()) + r")\s+\w)", re.IGNORECASE)


@functools.cache
def rules_for(language: str | None) -> SentenceRules:
    """The cutting rules of a language (Whisper code); English's abbreviations
    are known in every language (an LLM writes "e.g." in any of them), but
    phrase cuts only where the language's own words are listed."""
    code = base_language(language)
    abbreviations = _ABBREVIATIONS["en"] | _ABBREVIATIONS.get(code, set())
    openers = _PHRASE_OPENERS.get(code)
    return SentenceRules(
        code,
        frozenset(abbreviations),
        _phrase_start(openers) if openers else None,
        frozenset(_NO_PHRASE_END.get(code, "").split()),
    )


def word_count(text: str) -> int:
    """Words in `text`, counting each character of an unspaced script as one."""
    return len(_WORD.findall(text))


def _clean(sentence: str) -> str:
    """Drop markdown (emphasis, list markers, code) that a TTS would read
    aloud, so a piece that is only markup ("**", "-") holds no characters."""
    return " ".join(strip_markdown(sentence).split())


class SentenceAggregator:
    """Feed text pieces with `push`; complete sentences come out in order.

    Pieces shorter than `min_chars` after cleaning (a stray "-" or "*") are
    dropped rather than sent to the TTS as noise, unless they are a letter or
    a digit: a one-character answer ("4", "I") is a sentence (it used to be
    dropped with the noise: "What is 2 plus 2?" got the reply "4", and the
    user heard nothing).  `first_clause_words`
    (0: off) releases the first clause of the first sentence once it has at
    least that many words.  `first_phrase_words` (0: off) releases it at a
    phrase boundary without punctuation ("Walking from the train station |
    to the old town ...") once it has at least that many words, so a long
    first sentence without a comma does not hold back the first audio.
    `first_piece_words` (0: off) is the fewest words the first piece may
    have: shorter first sentences wait for what follows them.  `hurry`, asked
    while a later sentence is being written, says the listener is about to
    run out of audio: the sentence so far then goes out at its next clause
    mark or phrase cut, as the first one does.
    """

    def __init__(
        self,
        min_chars: int = 2,
        first_clause_words: int = 0,
        first_phrase_words: int = 0,
        language: str | None = None,
        first_piece_words: int = 0,
        hurry: Callable[[], bool] | None = None,
    ) -> None:
        self.rules = rules_for(language)
        self._tokenizer = self.rules.tokenizer()
        self._buffer = ""
        self.min_chars = min_chars
        self.first_clause_words = first_clause_words
        self.first_phrase_words = first_phrase_words
        self.first_piece_words = first_piece_words
        self.hurry = hurry
        self._released_any = False

    def push(self, text: str) -> Iterator[str]:
        self._buffer += text
        spans = self._spans(self._buffer)
        # Everything before the start of the last sentence is complete.
        cut = spans[-1][0] if len(spans) >= 2 else None
        if cut is None:
            yield from self._first_clause()
            return
        if self._too_short_to_open(self._buffer[:cut]):
            yield from self._first_clause(after_an_opener=True)
            return
        complete, self._buffer = self._buffer[:cut], self._buffer[cut:]
        yield from self._release(complete)

    def _too_short_to_open(self, complete: str) -> bool:
        """Whether `complete` sentences are too few words to be the reply's first piece."""
        return not self._released_any and word_count(_clean(complete)) < self.first_piece_words

    def _first_clause(self, after_an_opener: bool = False) -> Iterator[str]:
        """The sentence so far, up to a clause mark or phrase cut: for the
        reply's first piece, or for a later one when the listener is about to
        run out of audio (`hurry`).  `after_an_opener`: the buffer begins with
        a first sentence too short to go alone ("Certainly!"); its words count
        and the floor is the bar, so "Certainly! A great book | for a long
        train ride" goes at the first phrase cut rather than twenty tokens on."""
        if not self._released_any and after_an_opener:
            clause_words = self.first_clause_words and self.first_piece_words
            phrase_words = self.first_phrase_words and self.first_piece_words
        elif not self._released_any:
            clause_words = self.first_clause_words and max(self.first_clause_words, self.first_piece_words)
            phrase_words = self.first_phrase_words and max(self.first_phrase_words, self.first_piece_words)
        elif self.hurry is not None and self.hurry():
            clause_words, phrase_words = HURRIED_CLAUSE_WORDS, HURRIED_PHRASE_WORDS
        else:
            return
        cut = self._clause_end(clause_words) or self._phrase_end(phrase_words)
        if cut:
            clause, self._buffer = self._buffer[:cut], self._buffer[cut:].lstrip()
            yield from self._release(clause)

    def _clause_end(self, least: int) -> int | None:
        """Where the clause ends, if it has its clause mark and `least` words (0: never)."""
        if least <= 0:
            return None
        for mark in _CLAUSE_END.finditer(self._buffer):
            if word_count(_clean(self._buffer[: mark.end()])) >= least:
                return mark.end()
        return None

    def _phrase_end(self, least: int) -> int | None:
        """Where the phrase ends: before a word that opens a new one, after
        `least` words (0: never), never inside a number ("10 | to 15") or
        after an article ("the | of")."""
        if least <= 0 or self.rules.phrase_start is None:
            return None
        for boundary in self.rules.phrase_start.finditer(self._buffer):
            words = _clean(self._buffer[: boundary.start()]).split()
            if len(words) < least:
                continue
            last = words[-1].lower().strip("\"'()")
            if last not in self.rules.no_phrase_end and not _NUMBER.match(last) and last[-1:].isalnum():
                return boundary.start()
        return None

    def flush(self) -> Iterator[str]:
        """Release whatever is left at the end of the reply."""
        rest, self._buffer = self._buffer, ""
        yield from self._release(rest)

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Punkt's sentence spans, with a bare list marker ("1.") joined to the
        sentence after it instead of standing alone."""
        spans: list[tuple[int, int]] = []
        for start, end in self._tokenizer.span_tokenize(text):
            if spans and _LIST_MARKER.match(text[spans[-1][0] : spans[-1][1]]):
                start = spans.pop()[0]
            spans.append((start, end))
        return spans

    def _release(self, text: str) -> Iterator[str]:
        for start, end in self._spans(text):
            sentence = _clean(text[start:end])
            if len(sentence) >= self.min_chars or any(char.isalnum() for char in sentence):
                self._released_any = True
                yield sentence


def split_first_piece(text: str, min_words: int = 4, language: str | None = None) -> tuple[str, str]:
    """`text` cut once, after its first clause mark or before its first word
    that opens a phrase, leaving at least `min_words` words on each side and
    never cutting a number ("10 | to 15"); ("", text) if there is no such cut.
    For a TTS that speaks a piece only once it is whole: the head of a long
    sentence is heard while the rest is synthesised."""
    for cut in _cuts(text, min_words, rules_for(language)):
        return text[:cut].strip(), text[cut:].strip()
    return "", text


def _cuts(text: str, min_words: int, rules: SentenceRules) -> Iterator[int]:
    """Where `text` may be cut, in order: after a clause mark or before a
    word that opens a phrase, with at least `min_words` words on each side,
    never after an article or inside a number ("10 | to 15")."""
    marks = {m.end() for m in _CLAUSE_END.finditer(text)}
    if rules.phrase_start is not None:
        marks |= {m.start() for m in rules.phrase_start.finditer(text)}
    for cut in sorted(marks):
        head, rest = text[:cut].split(), text[cut:].split()
        if len(head) < min_words or len(rest) < min_words:
            continue
        last = head[-1].lower().strip("\"'()").rstrip(",;:")
        if last and last not in rules.no_phrase_end and not _NUMBER.match(last):
            yield cut


def split_long_piece(text: str, max_words: int, min_words: int = 4, language: str | None = None) -> list[str]:
    """`text` in pieces of at most `max_words` words (0: no limit), each cut
    at the last clause mark or phrase start that keeps it within the limit,
    else after `max_words` words.  For a TTS whose memory and time to first
    audio grow with the longest piece it is given (Piper keeps the memory of
    the longest sentence it ever spoke: 20 words 350 MiB, 80 words 570 MiB)."""
    pieces: list[str] = []
    rest = text.strip()
    while max_words > 0 and len(rest.split()) > max_words:
        fitting = [cut for cut in _cuts(rest, min_words, rules_for(language)) if len(rest[:cut].split()) <= max_words]
        if fitting:
            cut = fitting[-1]
        else:  # no clause or phrase boundary within the limit: cut between words
            cut = [word.end() for word in re.finditer(r"\S+", rest)][max_words - 1]
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces
