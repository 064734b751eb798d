"""Piper's resident memory against the longest piece of text it was given.

    python benchmarks/piper_memory.py    # prints the table: --tts_max_words 20, then no limit

onnxruntime's memory arena keeps what the longest input needed, so a Piper
that once spoke an 80-word sentence holds that memory for good.  Each run
loads the packaged voice in a fresh process, speaks a short first sentence
and then sentences of 10 to 80 words (as later sentences of one reply, so
only the word limit cuts them), and prints the process's resident memory
after each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORDS = "the quick brown fox jumps over the lazy dog while the cat sleeps on a warm mat near the door".split()
LENGTHS = (10, 20, 30, 40, 60, 80)


def measure(max_words: int) -> None:
    """In this process: RSS after each sentence length, with this word limit."""
    import psutil

    sys.path.insert(0, str(REPO))
    from benchmarks.harness import make_handler
    from conversation.turn import Turn
    from TTS.piper_handler import PiperTTSHandler
    from utils.messages import LLMSentence

    voice = make_handler(PiperTTSHandler, voice="joe", output_sample_rate=16000, max_words=max_words)
    process = psutil.Process()
    row = [f"{process.memory_info().rss >> 20}"]
    for length in LENGTHS:
        turn = Turn()
        list(voice.process(LLMSentence("Sure.", "en", turn)))
        list(voice.process(LLMSentence(" ".join((WORDS * 10)[:length]) + ".", "en", turn)))
        row.append(f"{process.memory_info().rss >> 20}")
    print(f"| {max_words or 'no limit'} | " + " | ".join(row) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max_words", type=int, help="Measure one limit in this process (0: none); else both.")
    args = parser.parse_args()
    if args.max_words is not None:
        measure(args.max_words)
        return 0
    print("| --tts_max_words | loaded (MiB) | " + " | ".join(f"after {n} words" for n in LENGTHS) + " |")
    print("|---|" + "---|" * (len(LENGTHS) + 1))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for max_words in (20, 0):
        subprocess.run([sys.executable, __file__, "--max_words", str(max_words)], env=env, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
