"""llama.cpp's thread count beside other work: fixed, or following the load (`--lm_n_threads 0`).

    python benchmarks/llm_threads.py             # prints the table
    python benchmarks/llm_threads.py --write     # replaces RESULTS_llm_threads.md

The default LLM (the packaged qwen2.5-1.5b, through its handler) writes an
80-token reply three times in each condition: alone; beside one busy process
(a Python loop, one core's worth: another session's server, a test worker);
and beside this process's own Piper speaking sentence after sentence (the TTS
speaks one sentence while the LLM writes the next).  Variants: the thread
count following the load (the default), one thread per physical core always
(before), one thread always.  Per row: tokens/s (median of three) and, where
the LLM is all this process computes, CPU seconds per token.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_llm_threads.md"
sys.path.insert(0, str(REPO))

from benchmarks.latency import add_output_arguments, results_report, save_results  # noqa: E402

TOKENS = 80
REPEATS = 3
PROMPT = [{"role": "user", "content": "Tell me a long story about a cat who learns to sail."}]
SENTENCE = "The assistant speaks this sentence while the language model writes the next one."


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def reply_rate(handler) -> tuple[float, float, int]:
    """Tokens/s and CPU seconds per token of one reply, and the thread count it ended on."""
    began, cpu = time.perf_counter(), process_cpu()
    pieces = sum(1 for _ in handler.generate(PROMPT, TOKENS))
    elapsed = time.perf_counter() - began
    return pieces / elapsed, (process_cpu() - cpu) / pieces, handler.threads.threads


class BusyProcess:
    """Another process computing all the time on one core's worth of CPU."""

    def __enter__(self) -> BusyProcess:
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait()


class SpeakingTTS:
    """Piper in a thread of this process, synthesizing sentence after sentence."""

    def __init__(self, tts) -> None:
        self.tts = tts
        self.stop = threading.Event()

    def _speak(self) -> None:
        while not self.stop.is_set():
            for _ in self.tts.synthesize(SENTENCE):
                if self.stop.is_set():
                    return

    def __enter__(self) -> SpeakingTTS:
        self.thread = threading.Thread(target=self._speak, daemon=True)
        self.thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_output_arguments(parser, RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from benchmarks.harness import make_handler
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler
    from TTS.piper_handler import PiperTTSHandler
    from utils.threads import physical_cores

    cores = physical_cores()
    tts = make_handler(PiperTTSHandler)
    variants = [
        ("following the load (`--lm_n_threads 0`, the default)", 0),
        (f"{cores} always (one per core: before)", cores),
        ("1 always", 1),
    ]
    conditions = [
        ("alone", lambda: _Nothing()),
        ("beside one busy process", BusyProcess),
        ("beside this process's Piper speaking", lambda: SpeakingTTS(tts)),
    ]
    load_before = os.getloadavg()
    lines = []
    for label, n_threads in variants:
        llm = make_handler(LlamaCppLanguageModelHandler, n_threads=n_threads)
        for condition, context in conditions:
            print(f"{label}, {condition} ...", flush=True)
            with context():
                runs = [reply_rate(llm) for _ in range(REPEATS)]
            rate = statistics.median(run[0] for run in runs)
            per_token = statistics.median(run[1] for run in runs)
            cpu = "–" if "Piper" in condition else f"{per_token:.3f}"
            ended = sorted({run[2] for run in runs})
            lines.append(f"| {label} | {condition} | {rate:.1f} | {cpu} | {', '.join(map(str, ended))} |")
        del llm
    report = results_report(
        "llama.cpp's threads beside other work",
        "llm_threads.py",
        f"the packaged qwen2.5-1.5b through its handler, an {TOKENS}-token reply {REPEATS} times per row (median).",
        [
            "| llama.cpp threads | condition | tokens/s | CPU s per token | threads at the reply's end |\n"
            "|---|---|---|---|---|\n" + "\n".join(lines),
            "CPU s per token is the whole process's CPU over the reply; beside Piper it would count the TTS "
            "too, so it is left out there.",
        ],
        load_before,
    )
    print(report)
    save_results(args, RESULTS, report.strip() + "\n")
    return 0


class _Nothing:
    def __enter__(self) -> _Nothing:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


if __name__ == "__main__":
    sys.exit(main())
