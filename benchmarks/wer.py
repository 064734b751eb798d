"""Word error rate, for tests and benchmarks of the STT stage."""

from __future__ import annotations

import re
import unicodedata

_NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()
_SYMBOLS = {"*": " star ", "#": " pound ", "&": " and ", "%": " percent "}


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation; digits 0-20 and keypad symbols
    spelled out, so "Press 1" and "press one." compare equal."""
    text = unicodedata.normalize("NFKC", text).lower()
    for symbol, word in _SYMBOLS.items():
        text = text.replace(symbol, word)
    text = re.sub(r"\b(\d+)\b", lambda m: _spell(m.group(1)), text)
    text = re.sub(r"[^\w\s']", " ", text).replace("'", "")
    return text.split()


def _spell(digits: str) -> str:
    number = int(digits)
    return _NUMBERS[number] if number < len(_NUMBERS) else digits


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


def corpus_wer(pairs: list[tuple[str, str]]) -> float:
    """Total word errors over total reference words (not a mean of per-file rates,
    which would let a two-word clip weigh as much as a paragraph)."""
    errors = sum(edit_distance(normalize(ref), normalize(hyp)) for ref, hyp in pairs)
    words = sum(len(normalize(ref)) for ref, _ in pairs)
    return errors / max(words, 1)
