"""Whisper on a window fitted to the turn against faster-whisper's own 30 s window: accuracy and time.

    python benchmarks/stt_window.py             # prints the table
    python benchmarks/stt_window.py --write     # replaces RESULTS_stt_window.md

Every English recorded human clip (164: telephone prompts and read speech,
most of them one to a few words) is transcribed whole by the real
faster-whisper handler, one clip at a time, in each variant: Whisper base
told English or detecting the language, each on the short window (the
default) and on `--stt_window_s 30`; tiny.en on its default 30 s window and
on a 10 s one.  Per variant: corpus WER, clips given another language than
English, and the handler's time per clip (p50 / p90), the STT's part of
what a user waits for at the end of a turn.  The test suite keeps a bound on
the default's WER over every fourth clip; whether the short window costs
accuracy is this benchmark's question.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_stt_window.md"
sys.path.insert(0, str(REPO))

from benchmarks.latency import add_output_arguments, fmt, percentile, results_report, save_results  # noqa: E402
from benchmarks.stt_incremental import english_clips  # noqa: E402
from benchmarks.wer import corpus_wer  # noqa: E402

# (label, handler settings); the first is the default stack's STT.
VARIANTS: list[tuple[str, dict]] = [
    ("`whisper-base`, `--language en` (10 s window, the default)", {"model_name": "whisper-base", "language": "en"}),
    (
        "`whisper-base`, `--language en`, `--stt_window_s 30` (faster-whisper's own decoding)",
        {"model_name": "whisper-base", "language": "en", "window_s": 30.0},
    ),
    (
        "`whisper-base`, `--language auto` (10 s window; the full window when detection is unsure)",
        {"model_name": "whisper-base", "language": "auto"},
    ),
    (
        "`whisper-base`, `--language auto`, `--stt_window_s 30`",
        {"model_name": "whisper-base", "language": "auto", "window_s": 30.0},
    ),
    ("`tiny.en` (30 s window, its default)", {"model_name": "tiny.en"}),
    ("`tiny.en`, `--stt_window_s 10`", {"model_name": "tiny.en", "window_s": 10.0}),
]


def measure(settings: dict, clips: list[tuple[Path, str]]) -> dict:
    """One variant over the clips: WER, clips heard as another language, time per clip."""
    from audio.pcm import int16_to_float, load_audio
    from benchmarks.harness import make_handler
    from STT.faster_whisper_handler import FasterWhisperSTTHandler

    handler = make_handler(FasterWhisperSTTHandler, **settings)
    pairs, times, other_language = [], [], 0
    for path, reference in clips:
        audio = int16_to_float(load_audio(path))
        began = time.perf_counter()
        text, language = handler.transcribe(audio)
        times.append((time.perf_counter() - began) * 1000)
        pairs.append((reference, text))
        other_language += language not in (None, "en")
    p50, p90 = percentile(times, 50), percentile(times, 90)
    return {"wer": corpus_wer(pairs), "other": other_language, "p50": p50, "p90": p90}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_output_arguments(parser, RESULTS)
    parser.add_argument("--every", type=int, default=1, help="Only every Nth clip (a quick look; default: all).")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    clips = english_clips()[:: args.every]
    load_before = os.getloadavg()
    rows = []
    for label, settings in VARIANTS:
        print(f"{label} ...", flush=True)
        result = measure(settings, clips)
        rows.append(
            f"| {label} | {result['wer']:.1%} | {result['other']} | {fmt(result['p50'])} / {fmt(result['p90'])} |"
        )
    report = results_report(
        "Whisper's window: fitted to the turn, or 30 s",
        "stt_window.py",
        f"{len(clips)} English human clips, each transcribed whole by the faster-whisper handler (int8, greedy), "
        "one after another in one thread.",
        [
            f"| STT ({len(clips)} English human clips) | WER | clips heard as another language | "
            "time per clip p50 / p90 (ms) |\n|---|---|---|---|\n" + "\n".join(rows)
        ],
        load_before,
    )
    print(report)
    save_results(args, RESULTS, report.strip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
