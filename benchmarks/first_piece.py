"""How a reply is cut for the TTS, replayed on the same token streams: first audio against silences.

    python benchmarks/first_piece.py             # prints the table
    python benchmarks/first_piece.py --write     # replaces RESULTS_first_piece.md

The default LLM (the packaged qwen2.5-1.5b through its handler, the default
system prompt) answers the 30 spoken-answer questions (`../shared/audio/qa`),
the six spoken questions (`../shared/audio/questions`) and four requests for
four-sentence replies, each token stamped with the time
it came; on the idle machine, beside one busy process (one core's worth of a
Python loop) and beside two (every core busy: a slower or shared machine,
where the LLM writes barely faster than the voice speaks).  Every cutting variant then replays
the same streams (`SentenceAggregator`, as the answer loop drives it), so
the variants differ only in where they cut.

The playback is modelled, not played: one TTS makes the pieces in turn, each
in Piper's time per word as measured in the same condition (the packaged
voice, a 14-word sentence, median of three); the sink puts each piece out
once it is made, into the same `PlaybackLog` the live sinks keep (a piece
plays once it is out and the one before it has played, and lasts
`SECONDS_PER_WORD` per word: Piper's English voices say 2.5-3 words a
second), and the cushion variants' `hurry` is the answer loop's own
`running_low` over that log.  Columns: the first piece's release (ms after the
request; the TTS's own time comes on top, the same for every variant), its
words, the replies whose first piece was at most two words followed by more
(a filler: "Certainly!", "Sure."), and the silences over 150 ms once the
reply's audio had started.  The live figures through a real server are
`benchmarks/sessions.py`'s.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_first_piece.md"
sys.path.insert(0, str(REPO))

from arguments_classes.chat_arguments import DEFAULT_SYSTEM_PROMPT  # noqa: E402
from benchmarks.harness import QUESTIONS, SHARED_AUDIO, make_handler, read_transcripts  # noqa: E402
from benchmarks.latency import add_output_arguments, fmt, percentile, results_report, save_results  # noqa: E402
from benchmarks.llm_threads import SENTENCE, BusyProcess  # noqa: E402
from benchmarks.sessions import LONG_REQUESTS  # noqa: E402
from conversation.playback import PlaybackLog  # noqa: E402
from LLM.answer_loop import SECONDS_PER_WORD, running_low  # noqa: E402
from LLM.sentences import SentenceAggregator, word_count  # noqa: E402
from LLM.spoken_text import speakable  # noqa: E402

RATE = 16000


@dataclass(frozen=True)
class Variant:
    name: str
    first_piece_words: int
    audio_cushion_ms: int


VARIANTS = (
    Variant("before: first clause or phrase, whole sentences after", 0, 0),
    Variant("first piece ≥ 3 words", 3, 0),
    Variant("first piece ≥ 4 words", 4, 0),
    Variant("first piece ≥ 4 words, cushion 1000 ms", 4, 1000),
    Variant("first piece ≥ 4 words, cushion 1500 ms (default)", 4, 1500),
    Variant("first piece ≥ 4 words, cushion 2500 ms", 4, 2500),
    Variant("first piece ≥ 6 words, cushion 1500 ms", 6, 1500),
)

Stream = list[tuple[str, float]]  # (text piece, seconds after the request)


def prompts() -> list[str]:
    with open(SHARED_AUDIO / "qa" / "questions.tsv", newline="") as handle:
        questions = [row["question"] for row in csv.DictReader(handle, delimiter="\t")]
    spoken = [row["transcript"] for row in read_transcripts(QUESTIONS) if row["file"].startswith("q0")]
    return questions + spoken + LONG_REQUESTS


def piper_seconds_per_word(tts) -> float:
    """Piper's time per word for one sentence, median of three, in the present condition."""
    times = []
    for _ in range(3):
        began = time.perf_counter()
        for _ in tts.audio(SENTENCE, "en"):
            pass
        times.append(time.perf_counter() - began)
    return statistics.median(times) / word_count(SENTENCE)


def record(llm, prompt: str) -> Stream:
    messages = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
    began = time.perf_counter()
    return [(piece, time.perf_counter() - began) for piece in llm.generate(messages, 128) if isinstance(piece, str)]


class ModelledSpeech:
    """The TTS and the sink, modelled in time: one TTS makes the released
    pieces in turn (Piper's measured time per word); the sink puts each out
    once it is made, into a real `PlaybackLog`, which plays them as a client
    that plays each piece on arrival and counts its stalls; the cushion asks
    the answer loop's own `running_low` of it."""

    def __init__(self, tts_s_per_word: float) -> None:
        self.tts_s_per_word = tts_s_per_word
        self.tts_free = 0.0
        self.made: list[tuple[float, str, int]] = []  # (when made, text, words), not yet put out
        self.released_words = 0
        self.playback = PlaybackLog(sample_rate=RATE)

    def release(self, text: str, words: int, now: float) -> None:
        self.tts_free = max(now, self.tts_free) + words * self.tts_s_per_word
        self.made.append((self.tts_free, text, words))
        self.released_words += words

    def put_out(self, now: float) -> None:
        """The sink sends what the TTS has made by `now`."""
        while self.made and self.made[0][0] <= now:
            when, text, words = self.made.pop(0)
            self.playback.add(text, round(words * SECONDS_PER_WORD * RATE), RATE, when=when)

    def running_low(self, cushion_s: float, now: float) -> bool:
        self.put_out(now)
        return running_low(self.playback, self.released_words, cushion_s, now)


@dataclass
class Replay:
    first_ms: float | None
    first_words: int
    filler: bool
    gaps: list[float]


def replay(stream: Stream, variant: Variant, tts_s_per_word: float) -> Replay:
    speech = ModelledSpeech(tts_s_per_word)
    clock = [0.0]
    hurry: Callable[[], bool] | None = None
    if variant.audio_cushion_ms:
        hurry = lambda: speech.running_low(variant.audio_cushion_ms / 1000.0, clock[0])  # noqa: E731
    aggregator = SentenceAggregator(
        first_clause_words=4, first_phrase_words=5, first_piece_words=variant.first_piece_words, hurry=hurry
    )
    pieces: list[tuple[int, float]] = []

    def released(found: Iterator[str]) -> None:
        for sentence in found:
            spoken = speakable(sentence, "en")
            words = word_count(spoken)
            if words:
                pieces.append((words, clock[0]))
                speech.release(spoken, words, clock[0])

    for text, when in stream:
        clock[0] = when
        released(aggregator.push(text))
    released(aggregator.flush())
    speech.put_out(float("inf"))
    if not pieces:
        return Replay(None, 0, False, [])
    first_at = pieces[0][1]
    first_words = sum(words for words, at in pieces if at == first_at)  # released together: one piece of audio
    filler = first_words <= 2 and len(pieces) > 1
    return Replay(first_at * 1000.0, first_words, filler, speech.playback.stalls)


def table(streams: dict[str, list[Stream]], tts: dict[str, float]) -> list[str]:
    lines = [
        "| condition | variant | first piece out p50 / p90 ms | its words (median) | filler first pieces "
        "| silences > 150 ms (replies with one) | seconds silent, mean / max per reply |",
        "|---|---|---|---|---|---|---|",
    ]
    for condition, recorded in streams.items():
        for variant in VARIANTS:
            runs = [replay(stream, variant, tts[condition]) for stream in recorded]
            firsts = [run.first_ms for run in runs if run.first_ms is not None]
            silent = [sum(run.gaps) for run in runs]
            lines.append(
                f"| {condition} | {variant.name} | {fmt(percentile(firsts, 50))} / {fmt(percentile(firsts, 90))} "
                f"| {statistics.median(run.first_words for run in runs):.0f} | {sum(run.filler for run in runs)} "
                f"| {sum(len(run.gaps) for run in runs)} ({sum(bool(run.gaps) for run in runs)} of {len(runs)}) "
                f"| {statistics.mean(silent):.2f} / {max(silent):.2f} |"
            )
    return lines


def rates(streams: dict[str, list[Stream]], tts: dict[str, float]) -> list[str]:
    lines = [
        "| condition | LLM tokens/s, median over the replies | tokens per reply, median | Piper ms per word |",
        "|---|---|---|---|",
    ]
    for condition, recorded in streams.items():
        speeds = [(len(stream) - 1) / (stream[-1][1] - stream[0][1]) for stream in recorded if len(stream) > 2]
        lines.append(
            f"| {condition} | {statistics.median(speeds):.1f} | {statistics.median(len(s) for s in recorded):.0f} "
            f"| {tts[condition] * 1000:.0f} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="only the first N prompts (0: all)")
    add_output_arguments(parser, RESULTS)
    args = parser.parse_args()
    load_before = os.getloadavg()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler
    from TTS.piper_handler import PiperTTSHandler

    llm = make_handler(LlamaCppLanguageModelHandler, init_chat_prompt=DEFAULT_SYSTEM_PROMPT)
    piper = make_handler(PiperTTSHandler)
    asked = prompts()[: args.limit or None]
    streams: dict[str, list[Stream]] = {}
    tts: dict[str, float] = {}
    for condition, busy in (("idle", 0), ("beside a busy process", 1), ("beside two busy processes", 2)):
        with ExitStack() as stack:
            for _ in range(busy):
                stack.enter_context(BusyProcess())
            streams[condition] = [record(llm, prompt) for prompt in asked]
            tts[condition] = piper_seconds_per_word(piper)
    what = (
        f"{len(asked)} prompts (of the 30 `qa` questions, the 6 spoken ones and {len(LONG_REQUESTS)} "
        "four-sentence requests), "
        "each answered once per condition by the default LLM, and replayed through every variant."
    )
    body = [
        "## The LLM in each condition",
        "\n".join(rates(streams, tts)),
        "## Variants, on the same streams",
        "\n".join(table(streams, tts)),
    ]
    text = results_report("Where a reply is cut for the TTS", "first_piece.py", what, body, load_before)
    print(text)
    save_results(args, RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
