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

    python benchmarks/latency.py --modes socket,bare --one_core --long --baseline_tree /tmp/base \
        --variant no_incremental="--incremental_stt_ms 0" ...

`--one_core` runs the socket server and the bare models again under
`taskset -c 0` (one core: a stand-in for a slower machine); `--long` adds the
long-turn set (the English human clips of 6 s and more, and real clips joined
into requests of 8 to 30 s, see `long_requests.py`), reported against turn
length; `--baseline_tree` runs the same socket measurements on another
checkout (e.g. the previous commit, exported with `git archive`), so today's
code and the change are compared in one run.  The ratio of end of turn ->
first audio to the bare models' span is given both as a ratio of p50s and as
the p50 of per-file ratios (each file's last turn against its bare span).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.server_process import ServerProcess  # noqa: E402

SHARED_AUDIO = Path(os.environ.get("S2S_SHARED_AUDIO", REPO.parent / "shared" / "audio"))

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
class Setting:
    """Where a run's processes run: which checkout, and on which CPUs."""

    tree: Path = REPO
    cpus: str | None = None  # taskset CPU list, e.g. "0"

    def command(self, *args: str) -> list[str]:
        prefix = ["taskset", "-c", self.cpus] if self.cpus else []
        return [*prefix, sys.executable, *args]


@dataclass
class RunResult:
    label: str
    records: list[dict] = field(default_factory=list)  # one per answered turn, with its "file"
    transcripts: list[tuple[str, str]] = field(default_factory=list)  # (reference, heard) per file
    wall_s: float = 0.0
    cpus: str | None = None  # taskset CPU list the run was limited to
    unanswered: list[str] = field(default_factory=list)  # files whose turn got no reply (socket mode)


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
            lines = metrics.read_text().splitlines() if metrics.exists() else []
            records = [{**json.loads(line), "file": sample.path.name} for line in lines]
            if completed.returncode not in (0, 1) or not records:
                print(f"  {label}: no turn for {sample.path.name}: {completed.stderr[-300:]}", file=sys.stderr)
            result.records += records
            result.transcripts.append((sample.reference, " ".join(r["transcript"] for r in records)))
    result.wall_s = time.perf_counter() - began
    return result


def run_socket_mode(samples: list[Sample], extra: list[str], label: str, setting: Setting | None = None) -> RunResult:
    setting = setting or Setting()
    result = RunResult(label, cpus=setting.cpus)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess("socket", Path(tmp), *extra, cpus=setting.cpus, tree=setting.tree, start_timeout_s=120)
        try:
            for sample in samples:
                before = len(server.turns())
                # The client leaves once no reply audio has come for 3 s: with 1 s, a
                # long second sentence still being written (the LLM on 2 cores) made it
                # leave mid-reply, and the turn was dropped unmeasured.
                subprocess.run(
                    [sys.executable, "listen_and_play.py", "--send_port", str(server.recv_port),
                     "--recv_port", str(server.send_port), "--input_file", str(sample.path),
                     "--reply_idle_s", "3.0", "--timeout_s", "60"],
                    cwd=REPO, capture_output=True, text=True, timeout=120,
                )  # fmt: skip
                records = [{**record, "file": sample.path.name} for record in server.turns()[before:]]
                result.records += records
                result.transcripts.append((sample.reference, " ".join(r["transcript"] for r in records)))
                if not records:
                    result.unanswered.append(sample.path.name)
        finally:
            server.stop()
    result.wall_s = time.perf_counter() - began
    return result


def run_bare(samples: list[Sample], label: str = "bare models", setting: Setting | None = None) -> RunResult:
    """The bare models in a process of their own (under `setting`'s CPUs),
    as fresh as the pipeline's server."""
    setting = setting or Setting()
    with tempfile.TemporaryDirectory() as tmp:
        listing, out = Path(tmp) / "samples.json", Path(tmp) / "bare.json"
        listing.write_text(json.dumps([[str(s.path), s.reference] for s in samples]))
        began = time.perf_counter()
        subprocess.run(
            setting.command(str(Path(__file__).resolve()), "--bare_only", str(listing), "--output", str(out)),
            cwd=REPO, check=True, timeout=3600,
        )  # fmt: skip
        data = json.loads(out.read_text())
    result = RunResult(label, data["records"], [tuple(pair) for pair in data["transcripts"]], cpus=setting.cpus)
    result.wall_s = time.perf_counter() - began
    return result


def bare_models(samples: list[Sample], label: str = "bare models") -> RunResult:
    """The default models called directly: no queues, no threads, no VAD."""
    import queue
    import threading

    from audio.pcm import int16_to_float, load_audio
    from config.parse import parse_config
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler
    from LLM.sentences import SentenceAggregator
    from pipeline.builder import stage_kwargs
    from STT.faster_whisper_handler import FasterWhisperSTTHandler
    from TTS.piper_handler import PiperTTSHandler

    config = parse_config([])

    def build(handler_class, stage):
        return handler_class(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs=stage_kwargs(config, stage))

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
                "file": sample.path.name,
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


def machine_details() -> str:
    """`lscpu` as the machine's description, for the results files."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        lscpu = "(lscpu not available)"
    wanted = ("Architecture", "CPU(s)", "On-line", "Model name", "Thread(s)", "Core(s)", "Socket(s)", "L2", "L3",
              "Hypervisor", "Flags")  # fmt: skip
    lines = [line for line in lscpu.splitlines() if line.split(":", 1)[0].strip().startswith(wanted)]
    lines = [line if not line.startswith("Flags") else line[:120] + " ..." for line in lines]
    return "<details><summary><code>lscpu</code></summary>\n\n```\n" + "\n".join(lines) + "\n```\n</details>"


def load_note(before: tuple[float, float, float], after: tuple[float, float, float]) -> str:
    return (
        f"Load average (1, 5, 15 min) at the start {before[0]:.1f}, {before[1]:.1f}, {before[2]:.1f}; at the end "
        f"{after[0]:.1f}, {after[1]:.1f}, {after[2]:.1f}. The machine is shared: other engineers' tests ran at the "
        "same time, so compare rows of one run (ratios to the bare models of the same run), not absolute figures "
        "across runs."
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
    from benchmarks.wer import corpus_wer

    lines = ["| run | files | WER | files without a reply |", "|---|---|---|---|"]
    for run in results:
        missing = ", ".join(run.unanswered) or "–"
        lines.append(f"| {run.label} | {len(run.transcripts)} | {corpus_wer(run.transcripts):.1%} | {missing} |")
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
LONG_RESULTS = REPO / "benchmarks" / "RESULTS_latency_long.md"


LENGTH_BINS = [(0, 6), (6, 10), (10, 15), (15, 20), (20, 1000)]


def per_file_ratios(run: RunResult, bare: RunResult) -> list[float]:
    """Each file's last turn (the one that answers the whole request), end of
    turn -> first audio, against the bare models' span on the same file."""
    bare_span = {r["file"]: r["end_of_turn_to_first_audio_ms"] for r in bare.records}
    last: dict[str, dict] = {}
    for record in run.records:
        last[record["file"]] = record
    return [
        r["end_of_turn_to_first_audio_ms"] / bare_span[name]
        for name, r in last.items()
        if r.get("end_of_turn_to_first_audio_ms") is not None and bare_span.get(name)
    ]


def ratio_table(results: list[RunResult], bares: dict[str | None, RunResult]) -> str:
    """End of turn -> first audio against the bare models on the same files
    and the same CPUs."""
    lines = [
        "| run | CPUs | end of turn → first audio p50 / p90 (ms) | bare models' span p50 (ms) | ratio of p50s "
        "| per-file ratio p50 / p90 |",
        "|---|---|---|---|---|---|",
    ]
    for run in results:
        bare = bares.get(run.cpus)
        if bare is None or run is bare or run.label.startswith("file mode"):
            continue
        spans = [r.get("end_of_turn_to_first_audio_ms") for r in run.records]
        p50, p90 = percentile(spans, 50), percentile(spans, 90)
        bare_p50 = percentile([r["end_of_turn_to_first_audio_ms"] for r in bare.records], 50)
        ratios = per_file_ratios(run, bare)
        ratio = f"{p50 / bare_p50:.2f}" if p50 is not None and bare_p50 else "–"
        per_file = f"{percentile(ratios, 50):.2f} / {percentile(ratios, 90):.2f}" if ratios else "–"
        cpus = f"1 (taskset -c {run.cpus})" if run.cpus else str(os.cpu_count())
        lines.append(f"| {run.label} | {cpus} | {fmt(p50)} / {fmt(p90)} | {fmt(bare_p50)} | {ratio} | {per_file} |")
    return "\n".join(lines)


def length_table(results: list[RunResult]) -> str:
    """End of turn -> first audio against the turn's length (its speech)."""
    bins = [f"{low}–{high} s" if high < 1000 else f"≥ {low} s" for low, high in LENGTH_BINS]
    lines = [
        "| run | CPUs | " + " | ".join(f"{b}: p50 / p90 (turns)" for b in bins) + " | turns up to 15 s: p50 / p90 |",
        "|---|---|" + "---|" * (len(bins) + 1),
    ]
    for run in results:
        key = "end_of_turn_to_first_audio_ms"
        length = "speech_s" if not run.label.startswith("bare") else "audio_s"
        cells = []
        for low, high in LENGTH_BINS:
            values = [r.get(key) for r in run.records if low <= (r.get(length) or 0) < high]
            values = [v for v in values if v is not None]
            cells.append(f"{fmt(percentile(values, 50))} / {fmt(percentile(values, 90))} ({len(values)})")
        upto = [r.get(key) for r in run.records if (r.get(length) or 0) < 15 and r.get(key) is not None]
        cpus = f"1 (taskset -c {run.cpus})" if run.cpus else str(os.cpu_count())
        lines.append(
            f"| {run.label} | {cpus} | " + " | ".join(cells) + f" | {fmt(percentile(upto, 50))} / "
            f"{fmt(percentile(upto, 90))} |"
        )
    return "\n".join(lines)


def bare_only(listing: Path, output: Path) -> int:
    """`--bare_only`: the bare models on the listed files, JSON out (run by `run_bare`)."""
    samples = [Sample(Path(path), reference) for path, reference in json.loads(listing.read_text())]
    result = bare_models(samples)
    output.write_text(json.dumps({"records": result.records, "transcripts": result.transcripts}))
    return 0


def invocation(script: str = "benchmarks/latency.py") -> str:
    """The command line of this run of `script`, for the results' header."""
    return shlex.join(["python", script, *sys.argv[1:]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="file,socket,bare", help="Comma-separated: file, socket, bare.")
    parser.add_argument("--human", type=int, default=10, help="How many recorded human clips to add.")
    parser.add_argument("--variant", action="append", default=[], metavar='NAME="FLAGS"',
                        help="An extra pipeline run with these flags (repeatable).")  # fmt: skip
    parser.add_argument("--variant_modes", default="file,socket", help="Modes the variants run in.")
    add_output_arguments(parser, RESULTS)
    parser.add_argument(
        "--baseline_tree",
        default=None,
        help="Another checkout (e.g. `git archive` of the previous commit) run in socket mode too.",
    )
    parser.add_argument("--baseline_name", default="today's code", help="How the baseline tree is labelled.")
    parser.add_argument(
        "--one_core", action="store_true", help="Also run socket mode and the bare models under `taskset -c 0`."
    )
    parser.add_argument(
        "--one_core_runs",
        default="default,baseline",
        help="Which socket runs (default, baseline, variant names) repeat on one core.",
    )
    parser.add_argument("--long", action="store_true", help="Also measure the long-turn set against turn length.")
    parser.add_argument("--long_one_core", action="store_true", help="With --one_core: the long-turn set too.")
    parser.add_argument(
        "--long_runs",
        default="default,baseline",
        help="Which socket runs (default, baseline, variant names) the long-turn set gets.",
    )
    parser.add_argument("--notes", default="", help="Markdown appended under the tables (e.g. idea verdicts).")
    parser.add_argument("--long_notes", default="", help="Markdown appended under the long-turn tables.")
    parser.add_argument("--bare_only", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.bare_only:
        return bare_only(Path(args.bare_only), Path(args.output))
    load_before = os.getloadavg()
    samples = pick_samples(args.human)
    modes = args.modes.split(",")
    print(f"{len(samples)} files: {', '.join(s.path.name for s in samples)}", flush=True)

    socket_runs: dict[str, tuple[list[str], Setting, str]] = {"default": ([], Setting(), "socket mode (default stack)")}
    if args.baseline_tree:
        tree = Path(args.baseline_tree).resolve()
        socket_runs["baseline"] = ([], Setting(tree=tree), f"socket mode, {args.baseline_name}")
    variants = [(name, flags) for name, _, flags in (spec.partition("=") for spec in args.variant)]
    for name, flags in variants:
        socket_runs[name] = (flags.split(), Setting(), f"socket mode, {name} (`{flags}`)")

    def measure(runs: str, one_core: bool, chosen: list[Sample], suffix: str) -> list[RunResult]:
        measured = []
        for name in [n for n in runs.split(",") if n in socket_runs]:
            flags, setting, label = socket_runs[name]
            setting = Setting(setting.tree, "0") if one_core else setting
            label += " [1 core]" if one_core else ""
            print(f"running {label}{suffix} ...", flush=True)
            measured.append(run_socket_mode(chosen, flags, label, setting))
        if "bare" in modes:
            print(f"running the bare models{' [1 core]' if one_core else ''}{suffix} ...", flush=True)
            measured.append(run_bare(chosen, "bare models" + (" [1 core]" if one_core else ""),
                                     Setting(cpus="0" if one_core else None)))  # fmt: skip
        return measured

    results: list[RunResult] = []
    if "file" in modes:
        print("running file mode ...", flush=True)
        results.append(run_file_mode(samples, [], "file mode (default stack)"))
    if "socket" in modes:
        main_runs = ",".join(["default", "baseline", *(name for name, _ in variants if "socket" in args.variant_modes)])
        results += measure(main_runs, False, samples, "")
    elif "bare" in modes:
        results += measure("", False, samples, "")
    if "file" in args.variant_modes.split(","):
        for name, flags in variants:
            print(f"running file mode, variant {name} ...", flush=True)
            results.append(run_file_mode(samples, flags.split(), f"file mode, {name} (`{flags}`)"))
    if args.one_core:
        results += measure(args.one_core_runs, True, samples, "")
    bares = {run.cpus: run for run in results if run.label.startswith("bare")}
    machine = machine_description()
    details = machine_details()

    synthetic = sum(1 for sample in samples if "questions" in str(sample.path))
    report = "\n\n".join(
        [
            "# Latency benchmark",
            f"Machine: {machine}.  \nGenerated by `{invocation()}` on "
            f"{time.strftime('%Y-%m-%d')} over {len(samples)} files ({synthetic}"
            " synthetic questions, the rest recorded human speech). Times in ms, p50 / p90 over answered turns.",
            "## Per stage",
            table(results),
            "File mode feeds audio faster than real time, so its `end of speech → end of turn` is"
            " compressed; socket mode streams at real-time pace, so its end-of-speech figures are what"
            " a user waits.",
            "## End of turn → first audio against the bare models (same files, same CPUs)",
            ratio_table(results, bares),
            "## Pipeline overhead (end of turn → first audio)",
            overhead_lines(results, bares.get(None)),
            "## Word error rate: through the pipeline (VAD-cut) vs the bare model on whole files",
            wer_table(results),
            "## Machine and load",
            details,
            load_note(load_before, os.getloadavg()),
            args.notes,
        ]
    )
    print(report)
    save_results(args, RESULTS, report.strip() + "\n")

    if args.long:
        from benchmarks.long_requests import joined_requests, long_human_clips

        long_load_before = os.getloadavg()
        with tempfile.TemporaryDirectory() as tmp:
            requests = long_human_clips(6.0) + joined_requests(Path(tmp), each=1)
            long_samples = [Sample(r.path, r.reference) for r in requests]
            print(f"long-turn set: {len(long_samples)} files", flush=True)
            long_results = measure(args.long_runs, False, long_samples, " (long turns)")
            if args.one_core and args.long_one_core:
                long_results += measure(args.long_runs, True, long_samples, " (long turns)")
            seconds = {r.path.name: r.seconds for r in requests}
        for run in long_results:
            for record in run.records:
                record["audio_s"] = seconds.get(record["file"])
        long_bares = {run.cpus: run for run in long_results if run.label.startswith("bare")}
        long_report = "\n\n".join(
            [
                "# Latency on long turns",
                f"Machine: {machine}.  \nGenerated by `{invocation()}` on "
                f"{time.strftime('%Y-%m-%d')} over {len(long_samples)} files: the English human clips of 6 s and "
                "more, and real clips joined into one request each (0.15 s pauses between clips, below the VAD's "
                "end-of-turn silence; see `benchmarks/long_requests.py`). Socket mode, real-time pace.",
                "## End of turn → first audio against turn length (speech in the turn; bare models: file length)",
                length_table(long_results),
                "## Against the bare models (same files, same CPUs)",
                ratio_table(long_results, long_bares),
                "## Per stage",
                table(long_results),
                "## Word error rate",
                wer_table(long_results),
                "## Machine and load",
                details,
                load_note(long_load_before, os.getloadavg()),
                args.long_notes,
            ]
        )
        print(long_report)
        save_results(args, LONG_RESULTS, long_report.strip() + "\n", suffix="_long")
    return 0


def results_report(title: str, script: str, what: str, body: list[str], load_before: tuple[float, float, float]) -> str:
    """A results file: its title, the machine and the command that made it
    (`script`, run with --write) with `what` it measured, the `body`
    (tables, readings), then the machine's details and the load around the run."""
    return "\n\n".join(
        [
            f"# {title}",
            f"Machine: {machine_description()}.  \nGenerated by `python benchmarks/{script} --write` on "
            f"{time.strftime('%Y-%m-%d')}: {what}",
            *body,
            "## Machine and load",
            machine_details(),
            load_note(load_before, os.getloadavg()),
        ]
    )


def add_output_arguments(parser: argparse.ArgumentParser, committed: Path) -> None:
    """Where a benchmark's report goes: printed only, unless asked to write it;
    a bare run never replaces the committed results."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--write", action="store_true", help=f"Replace the committed {committed.name} with this run.")
    where.add_argument("--output", help="Also write the report to this file (default: print it only).")


def save_results(args: argparse.Namespace, committed: Path, text: str, suffix: str = "") -> None:
    """`suffix`: a second report of the same run goes beside `--output` under this suffix."""
    output = Path(args.output) if args.output else None
    if output is not None and suffix:
        output = output.with_name(output.stem + suffix + output.suffix)
    path = committed if args.write else output
    if path is None:
        print(f"(not written: --write replaces {committed.name}, --output writes elsewhere)")
        return
    path.write_text(text)
    print(f"written to {path}")


if __name__ == "__main__":
    sys.exit(main())
