"""Cut a stream of LLM tokens into sentences, releasing each as soon as it is done.

TTS needs whole sentences to sound natural, but waiting for the full reply
would add the LLM's whole generation time to the latency.  A sentence is
released when the Punkt tokenizer sees a later sentence start behind it, i.e.
"Paris. It" releases "Paris." — the tokenizer, not a bare full-stop test,
decides, so "Dr. Smith" or "3.5" do not split a sentence.

The reply's first sentence may go out earlier still: with `first_clause_words`
set, its first clause ("For a long train ride,") is released as soon as the
clause mark and the next word have arrived, so the TTS starts speaking while
the LLM finishes the sentence.  Only the first: later sentences are spoken
whole, for their intonation, while the first one plays.

nltk's Punkt tokenizer is instantiated directly (default parameters plus a
few common English abbreviations); nltk's data downloader is never called: it
fails offline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

from utils.spoken_text import strip_markdown

_ABBREVIATIONS = {
    "dr", "mr", "mrs", "ms", "prof", "st", "vs", "etc", "e.g", "i.e", "jr", "sr",
    "inc", "ltd", "co", "no", "fig", "approx", "dept", "u.s", "a.m", "p.m",
}  # fmt: skip


_LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-•*])\s*$")
# A clause mark followed by a space and the start of the next word: "ride, a".
# The space rules out "3,000" and "10:30"; the next word rules out a mark that
# ends the sentence's last clause.
_CLAUSE_END = re.compile(r"[,;:](?=\s+\w)|\s[-–—](?=\s+\w)")


def _tokenizer() -> PunktSentenceTokenizer:
    params = PunktParameters()
    params.abbrev_types = set(_ABBREVIATIONS)
    return PunktSentenceTokenizer(params)


def _clean(sentence: str) -> str:
    """Drop markdown (emphasis, list markers, code) that a TTS would read
    aloud, so a piece that is only markup ("**", "-") holds no characters."""
    return " ".join(strip_markdown(sentence).split())


class SentenceAggregator:
    """Feed text pieces with `push`; complete sentences come out in order.

    Pieces shorter than `min_chars` after cleaning (a stray "-" or "**")
    are dropped rather than sent to the TTS as noise.  `first_clause_words`
    (0: off) releases the first clause of the first sentence once it has at
    least that many words.
    """

    def __init__(self, min_chars: int = 2, first_clause_words: int = 0) -> None:
        self._tokenizer = _tokenizer()
        self._buffer = ""
        self.min_chars = min_chars
        self.first_clause_words = first_clause_words
        self._released_any = False

    def push(self, text: str) -> Iterator[str]:
        self._buffer += text
        spans = self._spans(self._buffer)
        if len(spans) < 2:
            yield from self._first_clause()
            return
        # Everything before the start of the last sentence is complete.
        cut = spans[-1][0]
        complete, self._buffer = self._buffer[:cut], self._buffer[cut:]
        yield from self._release(complete)

    def _first_clause(self) -> Iterator[str]:
        if self._released_any or self.first_clause_words <= 0:
            return
        for mark in _CLAUSE_END.finditer(self._buffer):
            clause = self._buffer[: mark.end()]
            if len(_clean(clause).split()) >= self.first_clause_words:
                self._buffer = self._buffer[mark.end() :].lstrip()
                yield from self._release(clause)
                return

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
            if len(sentence) >= self.min_chars:
                self._released_any = True
                yield sentence
