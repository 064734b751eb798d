"""End-of-turn detection on whole sets: how long the VAD waits, and how often it cuts a speaker off.

    python benchmarks/turn_detection.py                     # prints the table
    python benchmarks/turn_detection.py --write

Every English recorded human clip (one utterance each, many with pauses inside)
and the spoken questions go through the real VADHandler, chunk by chunk, with
a second of silence after each.  Per variant of turn detection:
- wait: silence the VAD needed after the clip's last voiced sample before it
  ended the turn (the part of end of speech -> first audio that turn
  detection decides; the speculative reply is ready at ~50 ms into a pause);
- cut: clips split into more than one turn (a speaker cut off mid-utterance).
The words signal needs the early transcript of each pause: the real STT
transcribes every provisional segment as it comes (synchronously, so the
transcript is always in time: an upper bound on what the words can do).
"""

from __future__ import annotations

import argparse
import csv
import sys
import threading
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_turn_detection.md"
sys.path.insert(0, str(REPO))

from audio.pcm import load_audio, split_chunks  # noqa: E402
from benchmarks.latency import SHARED_AUDIO, add_output_arguments, machine_description, percentile, save_results  # noqa: E402
from utils.messages import AudioChunk, SpeechSegment  # noqa: E402
from VAD.vad_handler import VADHandler  # noqa: E402

VARIANTS = {
    "silence (300 ms)": {"words": False, "turn_detector": "silence"},
    "silence + words (default)": {"words": True, "turn_detector": "silence"},
    "smart-turn": {"words": False, "turn_detector": "smart-turn"},
    "smart-turn + words": {"words": True, "turn_detector": "smart-turn"},
}


def clips() -> list[Path]:
    found = sorted((SHARED_AUDIO / "questions").glob("q0*.wav"))
    with open(SHARED_AUDIO / "human" / "transcripts.tsv", newline="") as handle:
        found += [SHARED_AUDIO / "human" / row["file"] for row in csv.DictReader(handle, delimiter="\t")
                  if row["language"] == "en"]  # fmt: skip
    return found


def run_clip(vad: VADHandler, stt, samples: np.ndarray) -> tuple[int, int, float | None]:
    """(turns ended, turns left after joins, ms of silence waited after the
    last voiced sample for the last turn)."""
    vad.on_reset()
    padded = np.concatenate([samples, np.zeros(16000, np.int16)])
    ended, waited, fed = [], None, 0
    for piece in split_chunks(padded, 512):
        fed += len(piece)
        for segment in vad.process(AudioChunk(samples=piece)):
            if not isinstance(segment, SpeechSegment):
                continue
            if segment.provisional:
                if stt is not None and segment.turn is not None:
                    text, _ = stt.transcribe(segment.audio)
                    segment.turn.transcript, segment.turn.language = text, "en"
                    segment.turn.mark("transcript_ready")
                continue
            ended.append(segment.turn)
            waited = (fed - segment.speech_key[1]) * 1000 / 16000
    for segment in vad.flush():
        if isinstance(segment, SpeechSegment) and not segment.provisional:
            ended.append(segment.turn)
    return len(ended), sum(not turn.withdrawn for turn in ended), waited


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_output_arguments(parser, RESULTS)
    parser.add_argument("--limit", type=int, default=0, help="only the first N clips (a quick look)")
    args = parser.parse_args()
    from tests.conftest import make_handler

    paths = clips()[: args.limit or None]
    audio = {path: load_audio(path) for path in paths}
    stt = None
    rows = []
    for label, variant in VARIANTS.items():
        if variant["words"] and stt is None:
            from STT.faster_whisper_handler import FasterWhisperSTTHandler

            stt = make_handler(FasterWhisperSTTHandler, model_name="whisper-base", language="en")
        vad = make_handler(
            VADHandler, should_listen=threading.Event(), speculative_stt_ms=50, speculative_reply=variant["words"],
            turn_detector=variant["turn_detector"],
        )  # fmt: skip
        waits, cut, still_cut = [], 0, 0
        for path in paths:
            turns, kept, waited = run_clip(vad, stt if variant["words"] else None, audio[path])
            cut += turns > 1
            still_cut += kept > 1
            if waited is not None:
                waits.append(waited)
        rows.append((label, waits, cut, still_cut))
        print(label, percentile(waits, 50), percentile(waits, 90), cut, still_cut, flush=True)
    lines = [
        "# End-of-turn detection",
        "",
        f"`python benchmarks/turn_detection.py`: {len(paths)} clips (the 6 spoken questions and every English "
        "recorded human clip, one utterance each), through the real VAD with 1 s of silence after each.",
        "",
        f"Machine: {machine_description()}. Other engineers' tests shared the CPU; the figures below are counts "
        "and stream positions, not wall-clock times, so the load does not change them.",
        "",
        "| turn detection | silence waited after the last word, p50 / p90 / mean ms | clips cut into 2+ turns "
        "| still cut after speech resumed joined the turn |",
        "|---|---|---|---|",
    ]
    for label, waits, cut, still_cut in rows:
        mean = sum(waits) / len(waits) if waits else None
        lines.append(
            f"| {label} | {percentile(waits, 50):.0f} / {percentile(waits, 90):.0f} / {mean:.0f} | "
            f"{cut} of {len(paths)} | {still_cut} |"
        )
    lines += [
        "",
        "Joining is shown as an upper bound: here no reply is ever heard, so speech resuming within "
        "`--join_window_ms` always joins; live, it joins only while the reply is still unheard.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    save_results(args, RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
