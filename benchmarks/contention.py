"""The LLM's speed while the other stages compute in the same process: alone, beside its TTS, beside a speaker.

    python benchmarks/contention.py                     # prints the table
    python benchmarks/contention.py --write             # ... and replaces benchmarks/RESULTS_contention.md
    python benchmarks/contention.py --variants baton,no_baton,no_baton_llm_1_thread,no_baton_1_thread,passive_omp

Each variant is one realtime server (default stack, the variant's flags and
environment) measured in three conditions, one after the other, by clients
on the official `openai` SDK:

- **alone**: one session asks typed questions with text replies
  (`output_modalities: ["text"]`): only the LLM computes;
- **with its TTS**: the same questions with spoken replies: the TTS speaks
  each sentence while the LLM writes the next, as the pipeline does;
- **with its TTS and a second session speaking**: meanwhile a second session
  streams recorded human speech at real-time pace without asking for
  answers (`create_response: false`): its VAD, the STT following its speech
  and transcribing each turn, and the LLM reading its prompt ahead, all in
  the same process.

Per condition, from the server's own turn metrics: the LLM's tokens/s over a
reply (first token to last, `llm_tokens_per_s`) and prompt → first token
(`llm_first_token_ms`), p50 over the questions; "shared / alone" is the
ratio of p50s.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_contention.md"
sys.path.insert(0, str(REPO))

from audio.pcm import load_audio  # noqa: E402
from benchmarks.latency import (  # noqa: E402
    add_output_arguments,
    machine_description,
    machine_details,
    percentile,
    pick_samples,
    save_results,
)
from benchmarks.server_process import ServerProcess  # noqa: E402
from connections.realtime.client import Conversation, connect, to_pcm24k  # noqa: E402
from utils.threads import physical_cores  # noqa: E402

QUESTIONS = [
    "Give me four tips for sleeping better, in four sentences.",
    "Describe the city of Paris to a visitor in four sentences.",
    "Explain how a bicycle works in four sentences.",
    "Tell me about the history of the Roman Empire in four sentences.",
    "What should I pack for a week of hiking? Answer in four sentences.",
    "Explain why the sky is blue in four sentences.",
]


@dataclass
class Variant:
    name: str
    flags: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""


VARIANTS = {
    "baton": Variant(
        "baton", ["--cpu_baton", "True"], note="the CPU baton: one compute stage at a time, each with every core"
    ),
    "no_baton": Variant(
        "no_baton",
        ["--cpu_baton", "False"],
        note="every stage computes when it likes, llama.cpp's threads following the load (default)",
    ),
    "no_baton_fixed_llm_threads": Variant(
        "no_baton_fixed_llm_threads",
        ["--cpu_baton", "False", "--lm_n_threads", str(physical_cores())],
        note="no baton, llama.cpp on one thread per core always (the default before its threads followed the load)",
    ),
    "no_baton_llm_1_thread": Variant(
        "no_baton_llm_1_thread",
        ["--cpu_baton", "False", "--lm_n_threads", "1"],
        note="no baton, llama.cpp on one thread (nothing of its own to spin against), the others on every core",
    ),
    "no_baton_1_thread": Variant(
        "no_baton_1_thread",
        ["--cpu_baton", "False", "--lm_n_threads", "1", "--stt_cpu_threads", "1", "--tts_threads", "1"],
        note="no baton, one thread per engine",
    ),
    "passive_omp": Variant(
        "passive_omp",
        ["--cpu_baton", "True"],
        env={"OMP_WAIT_POLICY": "PASSIVE"},
        note="the baton, OpenMP threads sleep at once when idle",
    ),
    "short_spin": Variant(
        "short_spin",
        ["--cpu_baton", "True"],
        env={"GOMP_SPINCOUNT": "10000"},
        note="the baton, OpenMP threads spin about 0.5 ms, not ~15 ms",
    ),
}


def ask(conversation: Conversation, question: str) -> bool:
    """One typed question, answered in full; False if no answer came."""
    mark = len(conversation.events)
    conversation.send(
        {"type": "conversation.item.create",
         "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": question}]}}
    )  # fmt: skip
    conversation.send({"type": "response.create"})
    try:
        conversation.wait_for("response.done", timeout=120, after=mark)
    except TimeoutError:
        return False
    time.sleep(0.3)
    return True


def listen_only(conversation: Conversation) -> None:
    """Once the session is created: turn detection on, but no answers (the
    user's turns only join the conversation)."""
    conversation.wait_for("session.created", timeout=20)
    conversation.send(
        {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": {
            "type": "server_vad", "create_response": False}}}}}
    )  # fmt: skip
    conversation.wait_for("session.updated", timeout=20)


def speaker(port: int, clips: list[bytes], stop: threading.Event) -> None:
    """A second session that speaks (real-time pace, a second of silence
    between clips) and asks for no answers."""
    conversation = connect(port)
    try:
        listen_only(conversation)
        while not stop.is_set():
            for clip in clips:
                if stop.is_set():
                    break
                conversation.speak(clip, silence_s=1.0)
    finally:
        conversation.close()


def condition(server: ServerProcess, label: str, audio: bool, clips: list[bytes] | None, questions: list[str]) -> dict:
    """Ask every question in one session; with `clips`, a second session speaks meanwhile."""
    stop = threading.Event()
    talker = None
    if clips:
        talker = threading.Thread(target=speaker, args=(server.port, clips, stop), daemon=True)
        talker.start()
        time.sleep(3.0)  # the speaker is under way before the first question
    before = len(server.turns())
    conversation = connect(server.port)
    answered = 0
    try:
        conversation.wait_for("session.created", timeout=20)
        modalities = ["audio"] if audio else ["text"]
        conversation.send({"type": "session.update", "session": {"type": "realtime", "output_modalities": modalities}})
        conversation.wait_for("session.updated", timeout=20)
        for question in questions:
            answered += ask(conversation, question)
    finally:
        conversation.close()
        stop.set()
        if talker is not None:
            talker.join(60)
    turns = answered_turns(server, before, answered)
    rates = [turn.get("llm_tokens_per_s") for turn in turns]
    firsts = [turn.get("llm_first_token_ms") for turn in turns]
    return {
        "label": label, "asked": len(questions), "answered": answered,
        "tokens_per_s": percentile([r for r in rates if r], 50),
        "first_token_ms": percentile([f for f in firsts if f], 50),
        "tokens": sum(turn.get("llm_tokens") or 0 for turn in turns),
    }  # fmt: skip


def answered_turns(server: ServerProcess, before: int, count: int, timeout_s: float = 60) -> list[dict]:
    """The asking session's turns logged after the first `before`, once all
    `count` are (a spoken reply's metrics come when its audio has played
    out).  The speaker's turns are never answered: the LLM wrote nothing for them."""
    deadline = time.time() + timeout_s
    while True:
        turns = [turn for turn in server.turns()[before:] if turn.get("llm_tokens")]
        if len(turns) >= count or time.time() > deadline:
            return turns
        time.sleep(0.2)


def measure(variant: Variant, clips: list[bytes], workdir: Path, questions: list[str]) -> list[dict]:
    env_before = {name: os.environ.get(name) for name in variant.env}
    os.environ.update(variant.env)  # the server's environment (ServerProcess copies os.environ)
    try:
        server = ServerProcess("realtime", workdir, *variant.flags, suffix=f"-{variant.name}")
    finally:
        for name, value in env_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        rows = [
            condition(server, "alone (text replies)", False, None, questions),
            condition(server, "with its TTS (spoken replies)", True, None, questions),
            condition(server, "with its TTS and a second session speaking", True, clips, questions),
        ]
    finally:
        server.stop()
    for row in rows:
        row["variant"] = variant.name
        print(row, flush=True)
    return rows


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(rows: list[dict], variants: list[Variant], note: str, questions: list[str]) -> str:
    shown = [arg for arg in sys.argv[1:] if arg != "--write"]
    if "--output" in shown:  # where this run was written is not part of how it was run
        at = shown.index("--output")
        del shown[at : at + 2]
    command = shlex.join(["python", "benchmarks/contention.py", *shown])
    lines = [
        "# The LLM beside the other stages",
        "",
        f"`{command}`: each variant is one realtime server; one SDK session asks "
        f"{len(questions)} typed questions (replies of four sentences) alone (text replies: only the LLM computes), "
        "then with spoken replies (its TTS speaks each sentence while the LLM writes the next), then with spoken "
        "replies while a second session streams recorded human speech at real-time pace without asking for "
        "answers (its VAD, the STT following it, the LLM reading its prompt ahead). From the server's turn "
        "metrics: the LLM's tokens/s over a reply and prompt → first token, p50 over the questions.",
        "",
        f"Machine: {machine_description()}. {note}",
        "",
        machine_details(),
        "",
        "| variant | condition | answered | LLM tokens/s | shared / alone | prompt → first token ms | alone / shared |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in variants:
        mine = [row for row in rows if row["variant"] == variant.name]
        alone = mine[0] if mine else None
        for row in mine:
            speed = (
                fmt(row["tokens_per_s"] / alone["tokens_per_s"], 2)
                if row is not alone and row["tokens_per_s"] and alone["tokens_per_s"]
                else ""
            )
            first = (
                fmt(alone["first_token_ms"] / row["first_token_ms"], 2)
                if row is not alone and row["first_token_ms"] and alone["first_token_ms"]
                else ""
            )
            lines.append(
                f"| {variant.name} | {row['label']} | {row['answered']} / {row['asked']} | "
                f"{fmt(row['tokens_per_s'], 1)} | {speed} | {fmt(row['first_token_ms'])} | {first} |"
            )
    lines += ["", "Variants:", *[f"- `{v.name}`: {v.note} ({' '.join(v.flags) or 'default flags'}"
                                 f"{''.join(f', {k}={x}' for k, x in v.env.items())})" for v in variants]]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="baton,no_baton", help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--questions", type=int, default=4, help=f"questions per condition (at most {len(QUESTIONS)})")
    parser.add_argument("--human", type=int, default=6, help="recorded human clips the second session speaks")
    parser.add_argument("--note", default="", help="a line about the conditions")
    add_output_arguments(parser, RESULTS)
    args = parser.parse_args()
    variants = [VARIANTS[name] for name in args.variants.split(",") if name]
    questions = QUESTIONS[: args.questions]
    samples = [sample for sample in pick_samples(args.human) if "human" in sample.path.parts]
    clips = [to_pcm24k(load_audio(sample.path), 16000) for sample in samples]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in variants:
            rows += measure(variant, clips, Path(tmp), questions)
    text = report(rows, variants, args.note, questions)
    print(text)
    save_results(args, RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
