"""The full-window retry of a doubtful short-window decode: one greedy decode, or faster-whisper's ladder.

    python benchmarks/stt_retry.py             # prints the table
    python benchmarks/stt_retry.py --write     # replaces RESULTS_stt_retry.md

A short-window decode that looks wrong (a loop, text the model finds
unlikely, likely silence) is decoded again on the full 30 s window.
faster-whisper's own decoding climbs a temperature ladder (0, 0.2, ... 1.0)
while its text loops or is unlikely, so on a language Whisper base knows
poorly nearly every line climbs it, up to six decodes.  The clips of 2-8 s
of `../shared/audio/human/` per language (English, Dutch, Czech), each
transcribed whole by the faster-whisper handler told its language (so the
retry is all that differs), with `--stt_retry_ladder False` (the default:
one greedy decode, the ladder only when it loops) and `True` (the ladder
on every retry).  Per language: corpus WER, and the STT's time per clip:
mean, p50, p90 and the longest, which a user waits for at the end of a turn.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_stt_retry.md"
sys.path.insert(0, str(REPO))

from benchmarks.harness import HUMAN, read_transcripts  # noqa: E402
from benchmarks.latency import add_output_arguments, percentile, results_report, save_results  # noqa: E402
from benchmarks.wer import corpus_wer  # noqa: E402

LANGUAGES = ("en", "nl", "cs")


def clips() -> list[dict[str, str]]:
    """The human clips of 2 to 8 s, as benchmarks/languages.py takes them."""
    import soundfile

    rows = [row for row in read_transcripts(HUMAN) if row["language"] in LANGUAGES]
    return [row for row in rows if 2.0 <= soundfile.info(str(HUMAN / row["file"])).duration <= 8.0]


def measure(ladder: bool, rows: list[dict[str, str]]) -> dict[str, dict]:
    """Per language: WER and the seconds per clip, with the retry as `ladder` says."""
    from audio.pcm import int16_to_float, load_audio
    from benchmarks.harness import make_handler
    from STT.faster_whisper_handler import FasterWhisperSTTHandler

    handler = make_handler(FasterWhisperSTTHandler, model_name="whisper-base", language="auto", retry_ladder=ladder)
    results = {}
    for language in LANGUAGES:
        pairs, seconds = [], []
        for row in (row for row in rows if row["language"] == language):
            audio = int16_to_float(load_audio(HUMAN / row["file"]))
            began = time.perf_counter()
            text, _ = handler.transcribe(audio, language)
            seconds.append(time.perf_counter() - began)
            pairs.append((row["transcript"], text))
        results[language] = {"n": len(pairs), "wer": corpus_wer(pairs), "seconds": seconds}
    return results


def row(label: str, language: str, result: dict) -> str:
    seconds = result["seconds"]
    return (
        f"| {language} | {result['n']} | {label} | {result['wer']:.1%} | {statistics.mean(seconds):.2f} | "
        f"{percentile(seconds, 50):.2f} | {percentile(seconds, 90):.2f} | {max(seconds):.2f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_output_arguments(parser, RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    rows = clips()
    load_before = os.getloadavg()
    variants = (("one greedy retry (default)", False), ("the ladder on every retry (`--stt_retry_ladder True`)", True))
    measured = []
    for label, ladder in variants:
        print(f"{label} ...", flush=True)
        measured.append((label, measure(ladder, rows)))
    lines = [row(label, language, results[language]) for language in LANGUAGES for label, results in measured]
    report = results_report(
        "The full-window retry: one greedy decode, or faster-whisper's temperature ladder",
        "stt_retry.py",
        "the human clips of 2-8 s per language, each transcribed whole by the faster-whisper handler (Whisper "
        "base, int8, 10 s short window) told its language, one after another in one thread.",
        [
            "| language | clips | full-window retry | WER | seconds per clip: mean | p50 | p90 | longest |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(lines)
        ],
        load_before,
    )
    print(report)
    save_results(args, RESULTS, report.strip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
