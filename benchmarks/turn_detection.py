"""End-of-turn detection on whole sets: how long the VAD waits, and how often it cuts a speaker off.

    python benchmarks/turn_detection.py                     # prints the report
    python benchmarks/turn_detection.py --write

Two sets go through the real VADHandler, chunk by chunk, with a second of
silence after each clip, every clip a conversation of its own:
- the 170 clips: the 6 spoken questions and every English recorded human
  clip, one utterance each (read prompts: their pauses are short, most of them
  between two sentences);
- the pause-heavy set (benchmarks/pause_set.py): 111 of those utterances and
  the 30 spoken general-knowledge questions with a thinking pause of 400 to
  1200 ms spliced in before their last word, and in the longer ones also
  after a word that needs a continuation or in the middle.
Per variant of turn detection:
- wait: silence the VAD needed after the clip's last voiced sample before it
  ended the turn (the part of end of speech -> first audio that turn
  detection decides);
- cut: clips split into more than one turn (a speaker cut off mid-utterance);
  how long after the cut the speaker went on (the join window repairs a cut
  when the speaker goes on before the reply's first audio is heard).
The words need the early transcript of each pause: the real STT transcribes
every provisional segment as it comes.  Evidence timing "instant" hands the
transcript to the VAD at once (an upper bound on what the words can do, as
the earlier results did); "live" only once the audio has run on for as long
as the transcription took on this machine, as it would in a live
conversation.  Smart Turn's verdict is always used only from the stream
position its call would have reached live.
"""

from __future__ import annotations

import argparse
import csv
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_turn_detection.md"
sys.path.insert(0, str(REPO))

import VAD.end_of_turn as end_of_turn  # noqa: E402
from audio.pcm import load_audio, split_chunks  # noqa: E402
from benchmarks import pause_set  # noqa: E402
from benchmarks.latency import SHARED_AUDIO, add_output_arguments, machine_description, percentile, save_results  # noqa: E402
from conversation.session import Session, SessionObserver  # noqa: E402
from utils.messages import AudioChunk, SpeechSegment  # noqa: E402
from VAD.vad_handler import VADHandler  # noqa: E402

RATE = 16000


@dataclass
class Variant:
    label: str
    turn_detector: str
    words: bool = True
    smart_turn: bool = True
    live: bool = True  # evidence timing
    eagerness: str = "auto"
    bar: float | None = None  # for the curve: the eagerness's bar replaced


VARIANTS = [
    Variant("silence 300 ms", "silence", words=False, live=False),
    Variant("silence 300 ms + words (the previous default)", "silence", live=False),
    Variant("silence 300 ms + words, live", "silence"),
    Variant("smart-turn (its verdict at once) + words, live", "smart-turn"),
    Variant("evidence, eagerness low", "evidence", eagerness="low"),
    Variant("**evidence, eagerness auto (medium): the default**", "evidence"),
    Variant("evidence, eagerness high", "evidence", eagerness="high"),
    Variant("evidence, auto, without Smart Turn", "evidence", smart_turn=False),
    Variant("evidence, auto, instant evidence (upper bound)", "evidence", live=False),
]
CURVE_BARS = (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def base_clips() -> list[tuple[str, np.ndarray]]:
    found = sorted((SHARED_AUDIO / "questions").glob("q0*.wav"))
    with open(SHARED_AUDIO / "human" / "transcripts.tsv", newline="") as handle:
        found += [SHARED_AUDIO / "human" / row["file"] for row in csv.DictReader(handle, delimiter="\t")
                  if row["language"] == "en"]  # fmt: skip
    return [(path.name, load_audio(path)) for path in found]


class Starts(SessionObserver):
    """Where each stretch of speech began (stream ms), to see when a cut speaker went on."""

    def __init__(self) -> None:
        self.at: list[int] = []

    def speech_started(self, session: Session, audio_ms: int) -> None:
        self.at.append(audio_ms)


@dataclass
class ClipResult:
    turns: int
    kept: int  # turns left after speech resumed joined its turn
    waited_ms: float | None
    resumed_after_ms: list[float] = field(default_factory=list)  # per cut: speech went on this long after it


class Transcriber:
    """The real STT on each early transcript, once per distinct audio: the
    variants see the same pauses, and get the same text and the time it took
    the first time."""

    def __init__(self, stt) -> None:
        self.stt = stt
        self.known: dict[bytes, tuple[str, float]] = {}
        self.times_ms: list[float] = []

    def __call__(self, audio: np.ndarray) -> tuple[str, float]:
        key = audio.tobytes()
        if key not in self.known:
            began = time.perf_counter()
            text, _ = self.stt.transcribe(audio)
            self.known[key] = (text, time.perf_counter() - began)
            self.times_ms.append(self.known[key][1] * 1000)
        return self.known[key]


def run_clip(vad: VADHandler, transcribe: Transcriber | None, samples: np.ndarray, live: bool) -> ClipResult:
    session = vad.default_session
    session.drop_state("vad")
    session.drop_state("pause_habits")  # every clip is a new speaker
    starts = Starts()
    session.observer = starts
    padded = np.concatenate([samples, np.zeros(RATE, np.int16)])
    ended, waited, fed, cuts_at = [], None, 0, []
    pending: list[tuple[int, object, str]] = []  # (stream position when due, turn, transcript)
    for piece in split_chunks(padded, 512):
        fed += len(piece)
        for _, turn, text in [item for item in pending if item[0] <= fed]:
            turn.transcript, turn.language = text, "en"
            turn.mark("transcript_ready")
        pending = [item for item in pending if item[0] > fed]
        for segment in vad.process(AudioChunk(samples=piece)):
            if not isinstance(segment, SpeechSegment):
                continue
            if segment.provisional:
                if transcribe is not None and segment.turn is not None:
                    text, took = transcribe(segment.audio)
                    pending.append((fed + (int(took * RATE) if live else 0), segment.turn, text))
                continue
            ended.append(segment.turn)
            cuts_at.append(fed)
            waited = (fed - segment.speech_key[1]) * 1000 / RATE
    for segment in vad.flush():
        if isinstance(segment, SpeechSegment) and not segment.provisional:
            ended.append(segment.turn)
    resumed = []
    for at in cuts_at[:-1]:  # every end of turn but the last was a cut
        later = [start for start in starts.at if start * RATE / 1000 >= at - 512]
        if later:
            resumed.append(later[0] - at * 1000 / RATE)
    return ClipResult(len(ended), sum(not turn.withdrawn for turn in ended), waited, resumed)


@dataclass
class Row:
    label: str
    results: dict[str, list[ClipResult]]


def measure(variant: Variant, sets: dict[str, list[tuple[str, np.ndarray]]], transcribe: Transcriber) -> Row:
    from benchmarks.harness import make_handler

    saved = dict(end_of_turn.EAGERNESS)
    if variant.bar is not None:
        end_of_turn.EAGERNESS[variant.eagerness] = (variant.bar, saved[variant.eagerness][1])
    try:
        vad = make_handler(
            VADHandler, should_listen=threading.Event(), speculative_stt_ms=50, speculative_reply=variant.words,
            turn_detector=variant.turn_detector, eagerness=variant.eagerness,
        )  # fmt: skip
        if not variant.smart_turn:
            vad.smart_turn = None
        results = {
            name: [run_clip(vad, transcribe if variant.words else None, audio, variant.live) for _, audio in clips]
            for name, clips in sets.items()
        }
    finally:
        end_of_turn.EAGERNESS.clear()
        end_of_turn.EAGERNESS.update(saved)
    return Row(variant.label, results)


def summary(results: list[ClipResult]) -> tuple[float | None, float | None, float | None, int, int, float | None]:
    waits = [r.waited_ms for r in results if r.waited_ms is not None]
    gaps = [gap for r in results for gap in r.resumed_after_ms]
    mean = sum(waits) / len(waits) if waits else None
    cut = sum(r.turns > 1 for r in results)
    still = sum(r.kept > 1 for r in results)
    return percentile(waits, 50), percentile(waits, 90), mean, cut, still, max(gaps) if gaps else None


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def table(rows: list[Row], sets: dict[str, list]) -> list[str]:
    lines = [
        "| turn detection | " + " | ".join(
            f"{name}: wait p50 / p90 / mean ms | {name}: cut | {name}: longest resume after a cut ms" for name in sets
        ) + " |",
        "|---|" + "---|---|---|" * len(sets),
    ]  # fmt: skip
    for row in rows:
        cells = []
        for name in sets:
            p50, p90, mean, cut, _, gap = summary(row.results[name])
            cells += [f"{fmt(p50)} / {fmt(p90)} / {fmt(mean)}", f"{cut} of {len(sets[name])}", fmt(gap)]
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_output_arguments(parser, RESULTS)
    parser.add_argument("--limit", type=int, default=0, help="only the first N clips of each set (a quick look)")
    parser.add_argument("--no_curve", action="store_true", help="skip the sweep of the eagerness bar")
    args = parser.parse_args()
    from benchmarks.harness import make_handler
    from STT.faster_whisper_handler import FasterWhisperSTTHandler

    sets = {"shared clips": base_clips(), "pause-heavy": pause_set.clips()}
    if args.limit:
        sets = {name: clips[: args.limit] for name, clips in sets.items()}
    transcribe = Transcriber(make_handler(FasterWhisperSTTHandler, model_name="whisper-base", language="en"))
    rows = []
    for variant in VARIANTS:
        rows.append(measure(variant, sets, transcribe))
        print(variant.label, [summary(rows[-1].results[name]) for name in sets], flush=True)
    curve = []
    if not args.no_curve:
        for bar in CURVE_BARS:
            variant = Variant(f"bar {bar:.2f}", "evidence", bar=bar)
            curve.append(measure(variant, sets, transcribe))
            print(variant.label, [summary(curve[-1].results[name]) for name in sets], flush=True)
    count = " and ".join(f"{name} ({len(clips)} clips)" for name, clips in sets.items())
    lines = [
        "# End-of-turn detection",
        "",
        f"`python benchmarks/turn_detection.py`: {count}, through the real VAD with 1 s of silence after each "
        "clip, each clip a conversation of its own (see the script's docstring for the sets).",
        "",
        f"Machine: {machine_description()}. Waits and cuts are stream positions, not wall-clock times; the "
        f"live evidence timing uses this run's transcription times (p50 {fmt(percentile(transcribe.times_ms, 50))} "
        f"ms, p90 {fmt(percentile(transcribe.times_ms, 90))} ms per early transcript).",
        "",
        "Cut: the clip became two turns or more. Longest resume after a cut: how long after the VAD ended the "
        "turn the speaker went on; the join window (`--join_window_ms`) repairs the cut when that comes before "
        "the reply's first audio is heard.",
        "",
        *table(rows, sets),
    ]
    if curve:
        lines += [
            "",
            "## The trade-off curve: the default decision (live evidence, Smart Turn) with the bar moved",
            "",
            "The eagerness's bar is the probability that the turn is over at which it ends: high is 0.7, "
            "medium (auto) 0.8, low 0.9.",
            "",
            *table(curve, sets),
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    save_results(args, RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
