"""Cut a stream of LLM tokens into sentences, releasing each as soon as it is done.

TTS needs whole sentences to sound natural, but waiting for the full reply
would add the LLM's whole generation time to the latency.  A sentence is
released when the Punkt tokenizer sees a later sentence start behind it, i.e.
"Paris. It" releases "Paris." — the tokenizer, not a bare full-stop test,
decides, so "Dr. Smith" or "3.5" do not split a sentence.

nltk's Punkt tokenizer is instantiated directly (default parameters plus a
few common English abbreviations); nltk's data downloader is never called: it
fails offline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

_ABBREVIATIONS = {
    "dr", "mr", "mrs", "ms", "prof", "st", "vs", "etc", "e.g", "i.e", "jr", "sr",
    "inc", "ltd", "co", "no", "fig", "approx", "dept", "u.s", "a.m", "p.m",
}  # fmt: skip


_LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-•*])\s*$")


def _tokenizer() -> PunktSentenceTokenizer:
    params = PunktParameters()
    params.abbrev_types = set(_ABBREVIATIONS)
    return PunktSentenceTokenizer(params)


def _clean(sentence: str) -> str:
    """Drop markdown emphasis and list markers that a TTS would read aloud."""
    sentence = re.sub(r"[*_#`]+", "", sentence)
    sentence = re.sub(r"^\s*(?:[-•]|\d+[.)])\s+", "", sentence)
    return " ".join(sentence.split())


class SentenceAggregator:
    """Feed text pieces with `push`; complete sentences come out in order.

    Pieces shorter than `min_chars` after cleaning (a stray "-" or "**")
    are dropped rather than sent to the TTS as noise.
    """

    def __init__(self, min_chars: int = 2) -> None:
        self._tokenizer = _tokenizer()
        self._buffer = ""
        self.min_chars = min_chars

    def push(self, text: str) -> Iterator[str]:
        self._buffer += text
        spans = self._spans(self._buffer)
        if len(spans) < 2:
            return
        # Everything before the start of the last sentence is complete.
        cut = spans[-1][0]
        complete, self._buffer = self._buffer[:cut], self._buffer[cut:]
        yield from self._release(complete)

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
                yield sentence
