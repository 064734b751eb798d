"""Latency of a spoken turn, measured on the real pipeline and on the bare models.

    python benchmarks/latency.py                       # everything, prints the results
    python benchmarks/latency.py --write               # ... and replaces the committed benchmarks/RESULTS.md
    python benchmarks/latency.py --modes file,bare --human 6 --variant tiny_stt="--stt_model_name tiny.en"

For each audio file (the spoken questions plus a sample of the recorded human
clips) it runs:
- file mode: `s2s_pipeline.py --mode file`, one process per file, metrics from
  `--metrics_file`;
- socket mode: one server, `listen_and_play.py` streaming each file at
  real-time pace, metrics from the server's `--metrics_file`;
- bare: the same three models called directly, in this process, with no
  queues and no threads: transcribe the whole file, generate until the first
  sentence, synthesise it.

The pipeline's overhead is (pipeline end of turn -> first audio) / (bare STT +
LLM first sentence + TTS first audio) - 1, both p50 over the same files.
Variants re-run the pipeline modes with extra flags, one line each in the
results, so an idea's effect is measured against the baseline in one run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARED_AUDIO = Path(os.environ.get("S2S_SHARED_AUDIO", REPO.parent / "shared" / "audio"))
READY = re.compile(r"ready: send audio to port (\d+), replies come from port (\d+)")

STAGES = [
    ("vad_wait_ms", "end of speech → end-of-turn decision"),
    ("end_of_turn_to_transcript_ms", "end of turn → transcript"),
    ("end_of_turn_to_first_sentence_ms", "end of turn → first LLM sentence"),
    ("end_of_turn_to_first_audio_ms", "end of turn → first audio out"),
    ("speech_end_to_first_audio_ms", "end of speech → first audio out"),
    ("stt_ms", "STT alone"),
    ("llm_first_sentence_ms", "LLM to first sentence alone"),
    ("tts_first_audio_ms", "TTS to first audio alone"),
]


@dataclass
class Sample:
    path: Path
    reference: str


@dataclass
class RunResult:
    label: str
    records: list[dict] = field(default_factory=list)  # one per answered turn
    transcripts: list[tuple[str, str]] = field(default_factory=list)  # (reference, heard) per file
    wall_s: float = 0.0


def pick_samples(human_count: int) -> list[Sample]:
    samples = []
    questions = SHARED_AUDIO / "questions"
    with open(questions / "transcripts.tsv", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["file"].startswith("q"):
                samples.append(Sample(questions / row["file"], row["transcript"]))
    human = SHARED_AUDIO / "human"
    with open(human / "transcripts.tsv", newline="") as handle:
        english = [row for row in csv.DictReader(handle, delimiter="\t") if row["language"] == "en"]
    # An even spread over the English folders, longest-first within each so
    # every clip is a full phrase, deterministic.
    by_folder: dict[str, list[dict]] = {}
    for row in english:
        by_folder.setdefault(row["file"].split("/")[0], []).append(row)
    picked: list[dict] = []
    while len(picked) < human_count and any(by_folder.values()):
        for folder in sorted(by_folder):
            rows = sorted(by_folder[folder], key=lambda r: (-len(r["transcript"]), r["file"]))
            if rows and len(picked) < human_count:
                picked.append(rows[0])
                by_folder[folder] = [r for r in by_folder[folder] if r is not rows[0]]
    samples += [Sample(human / row["file"], row["transcript"]) for row in picked]
    return samples


def run_file_mode(samples: list[Sample], extra: list[str], label: str) -> RunResult:
    result = RunResult(label)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for index, sample in enumerate(samples):
            metrics = Path(tmp) / f"{index}.jsonl"
            completed = subprocess.run(
                [sys.executable, "s2s_pipeline.py", "--mode", "file", "--input_file", str(sample.path),
                 "--output_file", str(Path(tmp) / f"{index}.wav"), "--metrics_file", str(metrics),
                 "--log_level", "warning", *extra],
                cwd=REPO, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            records = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
            if completed.returncode not in (0, 1) or not records:
                print(f"  {label}: no turn for {sample.path.name}: {completed.stderr[-300:]}", file=sys.stderr)
            result.records += records
            result.transcripts.append((sample.reference, " ".join(r["transcript"] for r in records)))
    result.wall_s = time.perf_counter() - began
    return result


def run_socket_mode(samples: list[Sample], extra: list[str], label: str) -> RunResult:
    result = RunResult(label)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        metrics, log = Path(tmp) / "metrics.jsonl", Path(tmp) / "server.log"
        with open(log, "w") as log_handle:
            server = subprocess.Popen(
                [sys.executable, "s2s_pipeline.py", "--mode", "socket", "--recv_port", "0", "--send_port", "0",
                 "--metrics_file", str(metrics), *extra],
                cwd=REPO, stdout=log_handle, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                ports = None
                for _ in range(600):
                    ports = READY.search(log.read_text())
                    if ports or server.poll() is not None:
                        break
                    time.sleep(0.2)
                if not ports:
                    raise RuntimeError("server did not start:\n" + log.read_text()[-2000:])
                for sample in samples:
                    before = len(metrics.read_text().splitlines()) if metrics.exists() else 0
                    subprocess.run(
                        [sys.executable, "listen_and_play.py", "--send_port", ports.group(1),
                         "--recv_port", ports.group(2), "--input_file", str(sample.path),
                         "--reply_idle_s", "1.0", "--timeout_s", "60"],
                        cwd=REPO, capture_output=True, text=True, timeout=120,
                    )  # fmt: skip
                    lines = metrics.read_text().splitlines() if metrics.exists() else []
                    records = [json.loads(line) for line in lines[before:]]
                    result.records += records
                    result.transcripts.append((sample.reference, " ".join(r["transcript"] for r in records)))
            finally:
                server.send_signal(2)
                try:
                    server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    server.kill()
    result.wall_s = time.perf_counter() - began
    return result


def run_bare(samples: list[Sample], label: str = "bare models") -> RunResult:
    """The default models called directly: no queues, no threads, no VAD."""
    import queue
    import threading

    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler
    from STT.faster_whisper_handler import FasterWhisperSTTHandler
    from TTS.piper_handler import PiperTTSHandler
    from utils.audio import int16_to_float, load_audio
    from utils.config import parse_config
    from utils.sentences import SentenceAggregator

    config = parse_config([])

    def build(handler_class, stage):
        return handler_class(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs=config.stage_kwargs(stage))

    stt, llm, tts = (
        build(FasterWhisperSTTHandler, "stt"),
        build(LlamaCppLanguageModelHandler, "llm"),
        build(PiperTTSHandler, "tts"),
    )
    result = RunResult(label)
    began = time.perf_counter()
    for sample in samples:
        audio = int16_to_float(load_audio(sample.path))
        t0 = time.perf_counter()
        text, _ = stt.transcribe(audio)
        t1 = time.perf_counter()
        llm.chat.reset()
        llm.chat.add_user(text)
        first_sentence = None
        aggregator = SentenceAggregator()
        for piece in llm.generate(llm.chat.messages()):
            first_sentence = next(iter(aggregator.push(piece)), None)
            if first_sentence:
                break
        first_sentence = first_sentence or next(iter(aggregator.flush()), "")
        t2 = time.perf_counter()
        next(iter(tts.synthesize(first_sentence)), None)
        t3 = time.perf_counter()
        result.records.append(
            {
                "stt_ms": (t1 - t0) * 1000,
                "llm_first_sentence_ms": (t2 - t1) * 1000,
                "tts_first_audio_ms": (t3 - t2) * 1000,
                "end_of_turn_to_transcript_ms": (t1 - t0) * 1000,
                "end_of_turn_to_first_sentence_ms": (t2 - t0) * 1000,
                "end_of_turn_to_first_audio_ms": (t3 - t0) * 1000,
            }
        )
        result.transcripts.append((sample.reference, text))
    result.wall_s = time.perf_counter() - began
    return result


def percentile(values: list[float], q: float) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def machine_description() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    import torch

    return (
        f"{os.cpu_count()} CPU cores ({cpu}){memory}, no GPU; {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def table(results: list[RunResult]) -> str:
    header = "| run | turns | " + " | ".join(f"{name} p50 / p90 (ms)" for _, name in STAGES) + " |"
    lines = [header, "|" + "---|" * (len(STAGES) + 2)]
    for run in results:
        cells = []
        for key, _ in STAGES:
            values = [r.get(key) for r in run.records]
            cells.append(f"{fmt(percentile(values, 50))} / {fmt(percentile(values, 90))}")
        lines.append(f"| {run.label} | {len(run.records)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def wer_table(results: list[RunResult]) -> str:
    from utils.wer import corpus_wer

    lines = ["| run | files | WER |", "|---|---|---|"]
    for run in results:
        lines.append(f"| {run.label} | {len(run.transcripts)} | {corpus_wer(run.transcripts):.1%} |")
    return "\n".join(lines)


def overhead_lines(results: list[RunResult], bare: RunResult | None) -> str:
    """Two views of the overhead.  Inside one run: end of turn -> first audio
    minus the time spent in the three models, per turn (what the queues,
    threads and VAD hand-off cost).  Against the bare models: p50 of the
    whole span, same files (the pipeline may cut a long clip into two turns
    and so ask the LLM something slightly different)."""
    bare_p50 = percentile([r["end_of_turn_to_first_audio_ms"] for r in bare.records], 50) if bare else None
    lines = []
    for run in results:
        if run is bare:
            continue
        glue = [
            r["end_of_turn_to_first_audio_ms"] - r["stt_ms"] - r["llm_first_sentence_ms"] - r["tts_first_audio_ms"]
            for r in run.records
            if None not in (r.get(k) for k in ("end_of_turn_to_first_audio_ms", "stt_ms", "llm_first_sentence_ms",
                                                "tts_first_audio_ms"))
        ]  # fmt: skip
        p50 = percentile([r.get("end_of_turn_to_first_audio_ms") for r in run.records], 50)
        line = f"- {run.label}: time outside the models p50 {fmt(percentile(glue, 50))} ms"
        if p50 and glue:
            line += f" ({percentile(glue, 50) / p50:.1%} of the {p50:.0f} ms span)"
        if p50 and bare_p50:
            line += f"; span vs bare models {p50:.0f} / {bare_p50:.0f} ms ({p50 / bare_p50 - 1:+.1%})"
        lines.append(line)
    return "\n".join(lines)


RESULTS = REPO / "benchmarks" / "RESULTS.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="file,socket,bare", help="Comma-separated: file, socket, bare.")
    parser.add_argument("--human", type=int, default=10, help="How many recorded human clips to add.")
    parser.add_argument("--variant", action="append", default=[], metavar='NAME="FLAGS"',
                        help="An extra pipeline run with these flags (repeatable).")  # fmt: skip
    parser.add_argument("--variant_modes", default="file,socket", help="Modes the variants run in.")
    add_output_arguments(parser, RESULTS)
    parser.add_argument("--notes", default="", help="Markdown appended under the tables (e.g. idea verdicts).")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    samples = pick_samples(args.human)
    modes = args.modes.split(",")
    print(f"{len(samples)} files: {', '.join(s.path.name for s in samples)}", flush=True)
    results: list[RunResult] = []
    bare = None
    runners = {"file": run_file_mode, "socket": run_socket_mode}
    for mode in ("file", "socket"):
        if mode in modes:
            print(f"running {mode} mode ...", flush=True)
            results.append(runners[mode](samples, [], f"{mode} mode (default stack)"))
    for spec in args.variant:
        name, _, flags = spec.partition("=")
        for mode in args.variant_modes.split(","):
            print(f"running {mode} mode, variant {name} ...", flush=True)
            results.append(runners[mode](samples, flags.split(), f"{mode} mode, {name} (`{flags}`)"))
    if "bare" in modes:
        print("running the bare models ...", flush=True)
        bare = run_bare(samples)
        results.append(bare)

    synthetic = sum(1 for sample in samples if "questions" in str(sample.path))
    report = "\n\n".join(
        [
            "# Latency benchmark",
            f"Machine: {machine_description()}.  \nGenerated by `python benchmarks/latency.py --write` on "
            f"{time.strftime('%Y-%m-%d')} over {len(samples)} files ({synthetic}"
            " synthetic questions, the rest recorded human speech). Times in ms, p50 / p90 over answered turns.",
            "## Per stage",
            table(results),
            "File mode feeds audio faster than real time, so its `end of speech → end of turn` is"
            " compressed; socket mode streams at real-time pace, so its end-of-speech figures are what"
            " a user waits.",
            "## Pipeline overhead (end of turn → first audio)",
            overhead_lines(results, bare),
            "## Word error rate: through the pipeline (VAD-cut) vs the bare model on whole files",
            wer_table(results),
            args.notes,
        ]
    )
    print(report)
    save_results(args, RESULTS, report.strip() + "\n")
    return 0


def add_output_arguments(parser: argparse.ArgumentParser, committed: Path) -> None:
    """Where a benchmark's report goes: printed only, unless asked to write it;
    a bare run never replaces the committed results."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--write", action="store_true", help=f"Replace the committed {committed.name} with this run.")
    where.add_argument("--output", help="Also write the report to this file (default: print it only).")


def save_results(args: argparse.Namespace, committed: Path, text: str) -> None:
    path = committed if args.write else Path(args.output) if args.output else None
    if path is None:
        print(f"(not written: --write replaces {committed.name}, --output writes elsewhere)")
        return
    path.write_text(text)
    print(f"written to {path}")


if __name__ == "__main__":
    sys.exit(main())
