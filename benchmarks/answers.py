"""Right answers: the spoken general-knowledge questions through the real pipeline.

    python benchmarks/answers.py                          # default stack and both presets, print only
    python benchmarks/answers.py --write benchmarks/RESULTS_answers.md --notes_file notes.md
    python benchmarks/answers.py --configs fast --variant sampled="--preset fast --lm_gen_temperature 0.7"

The 30 questions of `../shared/audio/qa/` (accepted answers in its
`questions.tsv`) are joined into one recording with 2 s of silence between
them and answered by `s2s_pipeline.py --mode file`, one process per
configuration, exactly as `benchmarks/latency.py` drives file mode (the file
source waits for each reply before the next question, so every question gets
its own turn; the chat keeps its last exchanges as in any conversation).
`--separate` runs one process per question instead (a fresh chat each time,
about 5 s more per question for loading the models).

Each turn is matched to its question in order, then scored twice:
- the transcript: right when its words equal the question's (after
  `benchmarks.wer.normalize`), so an STT mistake is told apart from an LLM one;
- the reply: right when it contains an accepted answer, matched at the start
  of a word ("butterfl" matches "butterflies"), and as a whole word for
  answers of three characters or fewer ("au" is not "because", "0" is not "10").
A wrong reply on a right transcript is the LLM's mistake; on a wrong
transcript, the STT's.

Then the LLM alone is asked each question's text (its handler built from the
same configuration, no audio, a fresh chat per question) for its own accuracy,
its time to the first sentence and its generation speed in tokens per second.
Nothing is written unless `--write` names a file.
"""

from __future__ import annotations

import argparse
import csv
import os
import queue
import re
import shlex
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.latency import SHARED_AUDIO, Sample, fmt, machine_description, percentile, run_file_mode  # noqa: E402

QA = SHARED_AUDIO / "qa"
GAP_S = 2.0
DEFAULT_CONFIGS = ("default=", "fast=--preset fast", "quality=--preset quality")


@dataclass
class Question:
    file: str
    text: str
    accepted: list[str]


@dataclass
class Scored:
    question: Question
    transcript: str | None  # None: the pipeline gave this question no turn
    reply: str
    first_audio_ms: float | None = None

    @property
    def heard_right(self) -> bool:
        from benchmarks.wer import normalize

        return self.transcript is not None and normalize(self.transcript) == normalize(self.question.text)

    @property
    def right(self) -> bool:
        return is_right(self.reply, self.question.accepted)


@dataclass
class LLMAlone:
    right: list[bool] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    first_sentence_ms: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)


@dataclass
class ConfigResult:
    name: str
    flags: str
    scored: list[Scored] = field(default_factory=list)
    extra_turns: int = 0
    llm: LLMAlone | None = None
    wall_s: float = 0.0


def load_questions() -> list[Question]:
    with open(QA / "questions.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [Question(row["file"], row["question"], row["accepted_answers"].lower().split("|")) for row in rows]


def is_right(reply: str, accepted: list[str]) -> bool:
    text = reply.lower().replace("-", " ")
    for answer in accepted:
        answer = answer.replace("-", " ")
        end = r"\b" if len(answer) <= 3 else ""
        if re.search(r"(?<![\w])" + re.escape(answer) + end, text):
            return True
    return False


def joined_recording(questions: list[Question], folder: Path) -> Path:
    """All questions in one 16 kHz file, `GAP_S` of silence between them."""
    from audio.pcm import load_audio, write_wav

    gap = np.zeros(int(GAP_S * 16000), dtype=np.int16)
    parts = []
    for question in questions:
        parts += [load_audio(QA / question.file), gap]
    path = folder / "qa_joined.wav"
    write_wav(path, np.concatenate(parts), 16000)
    return path


def align(questions: list[Question], records: list[dict]) -> tuple[list[Scored], int]:
    """Match turns to questions in order, by the words they share (a turn the
    VAD cut in two, or a question with no turn, does not shift the rest)."""
    from benchmarks.wer import normalize

    def overlap(question: Question, record: dict) -> float:
        asked, heard = set(normalize(question.text)), set(normalize(record.get("transcript", "")))
        return len(asked & heard) / max(1, len(asked))

    n, m = len(questions), len(records)
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = max(best[i + 1][j], best[i][j + 1], overlap(questions[i], records[j]) + best[i + 1][j + 1])
    scored, i, j, used = [], 0, 0, 0
    while i < n:
        gain = overlap(questions[i], records[j]) if j < m else 0.0
        if gain and best[i][j] == gain + best[i + 1][j + 1]:
            record = records[j]
            first_audio = record.get("end_of_turn_to_first_audio_ms")
            scored.append(Scored(questions[i], record["transcript"], record["reply"], first_audio))
            i, j, used = i + 1, j + 1, used + 1
        elif j < m and best[i][j] == best[i][j + 1]:
            j += 1  # a turn that belongs to no question (a question cut in two)
        else:
            scored.append(Scored(questions[i], None, ""))  # a question that got no turn
            i += 1
    return scored, m - used


def run_pipeline(questions: list[Question], name: str, flags: str, separate: bool) -> ConfigResult:
    result = ConfigResult(name, flags)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if separate:
            samples = [Sample(QA / q.file, q.text) for q in questions]
        else:
            samples = [Sample(joined_recording(questions, Path(tmp)), "")]
        run = run_file_mode(samples, shlex.split(flags), name)
    result.scored, result.extra_turns = align(questions, run.records)
    result.wall_s = time.perf_counter() - began
    return result


def run_llm_alone(questions: list[Question], flags: str) -> LLMAlone:
    """The configured LLM handler on the question texts: its own accuracy,
    first sentence and decoding speed, with nothing else running."""
    from config.parse import parse_config
    from conversation.turn import Turn
    from pipeline.builder import stage_kwargs
    from utils.messages import LLMSentence, Transcript

    config = parse_config(shlex.split(flags))
    handler = config.llm_backend.handler_class()(
        threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs=stage_kwargs(config, "llm")
    )
    stamps: list[float] = []
    real_generate = handler.generate

    def timed_generate(messages, *args, **kwargs):
        for piece in real_generate(messages, *args, **kwargs):
            stamps.append(time.perf_counter())
            yield piece

    handler.generate = timed_generate
    tokenize = getattr(getattr(handler, "model", None), "tokenize", None)
    alone = LLMAlone()
    for question in questions:
        handler.on_reset()
        stamps.clear()
        turn = Turn()
        began = time.perf_counter()
        sentences = [
            m.text for m in handler.process(Transcript(question.text, "en", turn)) if isinstance(m, LLMSentence)
        ]
        reply = " ".join(sentences)
        alone.replies.append(reply)
        alone.right.append(is_right(reply, question.accepted))
        first = turn.marks.get("llm_first_sentence")
        if first is not None:
            alone.first_sentence_ms.append((first - began) * 1000)
        written = " ".join(handler.chat.messages()[-1]["content"].split())
        tokens = len(tokenize(written.encode("utf-8"), add_bos=False)) if tokenize else len(stamps)
        if len(stamps) >= 2 and tokens > 1:
            alone.tokens_per_s.append((tokens - 1) / (stamps[-1] - stamps[0]))
    return alone


def share(flags: list[bool]) -> str:
    return f"{sum(flags)}/{len(flags)} ({sum(flags) / len(flags):.0%})" if flags else "–"


def summary_table(results: list[ConfigResult]) -> str:
    lines = [
        "| configuration | answers right (pipeline) | transcripts right | wrong: STT / LLM | "
        "end of turn → first audio p50 / p90 (ms) | LLM alone: right | LLM first sentence p50 (ms) | "
        "tokens/s p50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        scored = result.scored
        wrong = [s for s in scored if not s.right]
        stt_wrong = sum(1 for s in wrong if not s.heard_right)
        audio = [s.first_audio_ms for s in scored]
        llm = result.llm
        flags = f" (`{result.flags}`)" if result.flags else ""
        cells = [
            f"{result.name}{flags}",
            share([s.right for s in scored]),
            share([s.heard_right for s in scored]),
            f"{stt_wrong} / {len(wrong) - stt_wrong}" if scored else "–",
            f"{fmt(percentile(audio, 50))} / {fmt(percentile(audio, 90))}",
            share(llm.right) if llm else "–",
            fmt(percentile(llm.first_sentence_ms, 50)) if llm else "–",
            fmt(percentile(llm.tokens_per_s, 50)) if llm else "–",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mistakes(results: list[ConfigResult], questions: list[Question]) -> str:
    """Every wrong answer, so a reader can judge the scoring and the model."""
    lines = []
    for result in results:
        wrong = [s for s in result.scored if not s.right]
        if result.scored:
            extra = f", {result.extra_turns} extra turn(s)" if result.extra_turns else ""
            lines.append(f"**{result.name}**: {len(wrong)} wrong through the pipeline{extra}")
        else:
            lines.append(f"**{result.name}**")
        for s in wrong:
            heard = "(no turn)" if s.transcript is None else f"heard “{s.transcript}”"
            cause = "STT" if not s.heard_right else "LLM"
            lines.append(f"- [{cause}] {s.question.text} — {heard} — replied “{s.reply}”")
        misheard = [s for s in result.scored if not s.heard_right]
        if misheard:
            lines.append("- transcripts that differ from the question (right answer or not): " + "; ".join(
                f"“{s.transcript}”" if s.transcript is not None else f"(no turn for “{s.question.text}”)"
                for s in misheard))  # fmt: skip
        if result.llm is not None:
            alone = [(q, r) for q, r, ok in zip(questions, result.llm.replies, result.llm.right, strict=True) if not ok]
            lines.append(f"- LLM alone, {len(alone)} wrong:" + "".join(f" {q.text} “{r}”;" for q, r in alone))
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(n.split("=")[0] for n in DEFAULT_CONFIGS),
                        help="Which of default, fast, quality to run (comma-separated; '' for none).")  # fmt: skip
    parser.add_argument("--variant", action="append", default=[], metavar='NAME="FLAGS"',
                        help="An extra configuration with these pipeline flags (repeatable).")  # fmt: skip
    parser.add_argument("--separate", action="store_true", help="One process per question (fresh chat each).")
    parser.add_argument("--no_llm_alone", action="store_true", help="Skip the LLM-alone pass.")
    parser.add_argument("--no_pipeline", action="store_true", help="Only the LLM-alone pass (quick comparisons).")
    parser.add_argument("--limit", type=int, default=0, help="Only the first N questions (a quick check).")
    parser.add_argument("--write", metavar="PATH", help="Write the report (markdown) there; default: print only.")
    parser.add_argument("--notes_file", help="Markdown appended under the tables (what each change did).")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    questions = load_questions()[: args.limit or None]
    known = dict(spec.split("=", 1) for spec in DEFAULT_CONFIGS)
    chosen = [(name, known[name]) for name in filter(None, args.configs.split(","))]
    chosen += [tuple(spec.split("=", 1)) for spec in args.variant]
    load_before = os.getloadavg()
    results = []
    for name, flags in chosen:
        print(f"running {name} ({flags or 'no flags'}) ...", flush=True)
        result = ConfigResult(name, flags) if args.no_pipeline else run_pipeline(questions, name, flags, args.separate)
        if not args.no_llm_alone:
            result.llm = run_llm_alone(questions, flags)
        results.append(result)
        print(summary_table([result]).splitlines()[-1], flush=True)
    load_after = os.getloadavg()

    layout = "one process per question" if args.separate else f"one recording, {GAP_S:.0f} s between questions"
    notes = Path(args.notes_file).read_text() if args.notes_file else ""
    report = "\n\n".join(
        [
            "# Answer accuracy",
            f"Machine: {machine_description()}.  \nGenerated by `python benchmarks/answers.py` on "
            f"{time.strftime('%Y-%m-%d')}: the {len(questions)} spoken questions of `shared/audio/qa` "
            f"through `s2s_pipeline.py --mode file` ({layout}); the LLM alone on the question texts. "
            f"Load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (above 2.0: other work "
            "shared the 2 cores during the run). Latency in ms over the answered turns.",
            summary_table(results),
            "## Wrong answers",
            mistakes(results, questions),
            notes,
        ]
    )
    print(report)
    if args.write:
        Path(args.write).write_text(report.strip() + "\n")
        print(f"written to {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
