"""Scale-out and operations: several servers on one LLM server, the SIGTERM drain, /metrics.

    python benchmarks/operations.py                 # prints the report
    python benchmarks/operations.py --write         # replaces benchmarks/RESULTS_operations.md

1. **Scale-out** (README, "Scaling out"): two users ask at the same moment,
   through the official SDK (connections/realtime/client.py), each one of
   the spoken general-knowledge questions (../shared/audio/qa/) in turn.
   Three topologies on this one machine, the same packaged Qwen2.5-0.5B in
   each: one s2s server with the LLM in its own process; two s2s servers
   (`--llm open_api`) sharing one `python -m llama_cpp.server` run as the
   compose file runs it; and the same with llama_cpp.server's default
   `--interrupt_requests True`.  Per topology: answers right (accepted
   answers, as benchmarks/answers.py scores them), end of speech → first
   audio as the client sees it, and stalls twice: counted by the servers
   (`s2s_audio_stalls_total` on /metrics) and measured by the client from
   the arrival times of the audio deltas (a listener that plays them as they
   arrive ran dry for over 150 ms).
2. **Drain**: a long reply is asked for, SIGTERM is sent at its first audio;
   did it finish, when, and when did the server exit (and with what status);
   the same with `--drain_timeout_s 1`.
3. **/metrics**: what a scrape costs (the full text of a server that has
   served turns).

The machine is described in the report; compare rows of one run.
"""

from __future__ import annotations

import argparse
import base64
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_operations.md"
sys.path.insert(0, str(REPO))

from audio.pcm import load_audio  # noqa: E402
from benchmarks.answers import QA, Question, is_right, load_questions  # noqa: E402
from benchmarks.latency import (  # noqa: E402
    SHARED_AUDIO,
    add_output_arguments,
    load_note,
    machine_description,
    machine_details,
    percentile,
    save_results,
)
from benchmarks.server_process import LLAMA_SERVER_FLAGS, LlamaServerProcess, ServerProcess  # noqa: E402
from connections.realtime.client import RATE, Conversation, connect, to_pcm24k  # noqa: E402
from conversation.playback import STALL_GAP_S  # noqa: E402

MODEL = "qwen2.5-0.5b"
AT_LENGTH = "Always answer at great length, in five sentences or more."


@dataclass
class Answer:
    question: Question
    right: bool = False
    reply: str = ""
    first_audio_ms: float | None = None
    client_stalls: int = 0
    error: str | None = None


@dataclass
class Topology:
    label: str
    answers: list[Answer] = field(default_factory=list)
    server_stalls: float = 0.0
    wall_s: float = 0.0


def client_stalls(conversation: Conversation, after: int) -> int:
    """Gaps over STALL_GAP_S a listener playing each audio delta as it arrived would have heard."""
    stalls, plays_until = 0, None
    for received in conversation.events[after:]:
        if received.event.type != "response.output_audio.delta":
            continue
        seconds = len(base64.b64decode(received.event.delta)) / 2 / RATE
        if plays_until is not None and received.at - plays_until > STALL_GAP_S:
            stalls += 1
        plays_until = max(received.at, plays_until or received.at) + seconds
    return stalls


def ask(port: int, questions: list[Question], start: threading.Barrier, answers: list[Answer]) -> None:
    """One user: each question at the same moment as the other user's, as a spoken turn."""
    conversation = connect(port)
    try:
        conversation.wait_for("session.created", timeout=60)
        for question in questions:
            answer = Answer(question)
            answers.append(answer)
            pcm = to_pcm24k(load_audio(QA / question.file), 16000)
            start.wait(timeout=300)
            mark = len(conversation.events)
            speech_end = conversation.speak(pcm, silence_s=1.0)
            try:
                first = conversation.wait_for("response.output_audio.delta", timeout=120, after=mark)[0]
                done = conversation.wait_for("response.done", timeout=120, after=mark)[0].event.response
            except TimeoutError as error:
                answer.error = str(error)[:200]
                continue
            answer.first_audio_ms = (first.at - speech_end) * 1000
            answer.reply = done.output[0].content[0].transcript if done.output else ""
            answer.right = is_right(answer.reply, question.accepted)
            answer.client_stalls = client_stalls(conversation, mark)
            time.sleep(1.0)
    finally:
        conversation.close()


def run_topology(label: str, ports: list[int], servers: list[ServerProcess], questions: list[Question]) -> Topology:
    """Two users, on `ports[0]` and `ports[-1]`, ask alternate questions at the same moments."""
    result = Topology(label)
    stalls_before = sum(server.scrape()[("s2s_audio_stalls_total", frozenset())] for server in servers)
    start = threading.Barrier(2)
    halves = [questions[0::2], questions[1::2]]
    count = min(len(half) for half in halves)
    answers: list[list[Answer]] = [[], []]
    began = time.perf_counter()
    threads = [
        threading.Thread(target=ask, args=(ports[index % len(ports)], halves[index][:count], start, answers[index]))
        for index in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall_s = time.perf_counter() - began
    result.answers = answers[0] + answers[1]
    time.sleep(6)  # realtime turns are counted once heard out
    result.server_stalls = sum(server.scrape()[("s2s_audio_stalls_total", frozenset())] for server in servers) - (
        stalls_before
    )
    print(label, [(a.question.file, a.right, round(a.first_audio_ms or -1)) for a in result.answers], flush=True)
    return result


def scale_out(workdir: Path, questions: list[Question]) -> list[Topology]:
    rows = []
    one = ServerProcess("realtime", workdir, "--lm_model_name", MODEL, "--max_sessions", "2", suffix="-one")
    try:
        rows.append(run_topology("one s2s server, LLM in process", [one.port], [one], questions))
    finally:
        one.stop()
    for label, extra in (
        (f"two s2s servers + llama_cpp.server (compose: {' '.join(LLAMA_SERVER_FLAGS)})", ()),
        ("two s2s servers + llama_cpp.server, its default --interrupt_requests True", ("--interrupt_requests", "True")),
    ):
        llm = LlamaServerProcess(MODEL, workdir, *extra)
        servers: list[ServerProcess] = []
        try:
            for index in range(2):
                flags = ("--llm", "open_api", "--lm_base_url", llm.url, "--lm_model_name", MODEL)
                servers.append(ServerProcess("realtime", workdir, *flags, suffix=f"-{len(rows)}-{index}"))
            rows.append(run_topology(label, [server.port for server in servers], servers, questions))
        finally:
            for server in servers:
                server.stop()
            llm.stop()
    return rows


@dataclass
class Drain:
    label: str
    finished: bool
    reply_words: int
    signal_to_done_s: float | None
    signal_to_exit_s: float
    exit_status: int | None
    farewell: str


def drain_trial(workdir: Path, label: str, *flags: str) -> Drain:
    server = ServerProcess("realtime", workdir, "--lm_model_name", MODEL, *flags, suffix="-drain")
    conversation = connect(server.port)
    try:
        conversation.wait_for("session.created", timeout=60)
        conversation.send({"type": "session.update", "session": {"type": "realtime", "instructions": AT_LENGTH}})
        conversation.wait_for("session.updated", timeout=10)
        conversation.speak(to_pcm24k(load_audio(SHARED_AUDIO / "questions" / "q04.wav"), 16000), silence_s=0.5)
        conversation.wait_for("response.output_audio.delta", timeout=120)
        signalled = time.perf_counter()
        server.process.send_signal(signal.SIGTERM)
        status = server.process.wait(timeout=60)
        exited = time.perf_counter() - signalled
        done = conversation.of("response.done")
        response = done[0].response if done else None
        at = next((r.at for r in conversation.events if r.event.type == "response.done"), None)
        errors = conversation.of("error")
        reply = response.output[0].content[0].transcript if response and response.output else ""
        return Drain(label, bool(response and response.status == "completed"), len(reply.split()),
                     None if at is None else at - signalled, exited, status,
                     errors[-1].error.message if errors else "-")  # fmt: skip
    finally:
        conversation.close()
        if server.alive():
            server.stop()


def scrape_cost(workdir: Path, count: int = 50) -> tuple[float | None, int]:
    server = ServerProcess("realtime", workdir, "--lm_model_name", MODEL, suffix="-scrape")
    try:
        times, size = [], 0
        for _ in range(count):
            began = time.perf_counter()
            size = len(server.get("/metrics")[1])
            times.append((time.perf_counter() - began) * 1000)
        return percentile(times, 50), size
    finally:
        server.stop()


def fmt(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def report(rows: list[Topology], drains: list[Drain], scrape: tuple[float | None, int], note: str) -> str:
    lines = [
        "# Scale-out and operations",
        "",
        "`python benchmarks/operations.py --write`. Two users on the official `openai` SDK ask the spoken "
        "general-knowledge questions (`../shared/audio/qa/`) at the same moments, each its own half of them, "
        f"at real-time pace; the LLM is the packaged `{MODEL}` in every topology.",
        "",
        f"Machine: {machine_description()}. {note}",
        "",
        machine_details(),
        "",
        "## Two users at once",
        "",
        "| topology | answers right | end of speech → first audio p50 / p90 ms | stalls: servers' /metrics / client "
        "| wall s |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        latencies = [a.first_audio_ms for a in row.answers if a.first_audio_ms is not None]
        right = sum(a.right for a in row.answers)
        client = sum(a.client_stalls for a in row.answers)
        lines.append(
            f"| {row.label} | {right} / {len(row.answers)} | {fmt(percentile(latencies, 50))} / "
            f"{fmt(percentile(latencies, 90))} | {row.server_stalls:.0f} / {client} | {row.wall_s:.0f} |"
        )
    lines += ["", "Replies that were not right:", ""]
    for row in rows:
        for answer in row.answers:
            if not answer.right:
                said = answer.error or answer.reply or "(nothing)"
                lines.append(f"- {row.label}: {answer.question.text} — “{said}”")
    lines += [
        "",
        "## SIGTERM during a reply",
        "",
        "| run | reply finished | words | SIGTERM → response.done s | SIGTERM → exit s | exit status | "
        "the client's last error event |",
        "|---|---|---|---|---|---|---|",
    ]
    for drain in drains:
        lines.append(
            f"| {drain.label} | {'yes' if drain.finished else 'no'} | {drain.reply_words} | "
            f"{fmt(drain.signal_to_done_s, 1)} | {drain.signal_to_exit_s:.1f} | {drain.exit_status} | "
            f"{drain.farewell} |"
        )
    lines += [
        "",
        "## /metrics",
        "",
        f"A scrape of a realtime server: {fmt(scrape[0], 1)} ms p50 over 50, {scrape[1]} bytes.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=10, help="how many of the 30 spoken questions (even)")
    add_output_arguments(parser, RESULTS)
    parser.add_argument("--note", default="", help="a line about the conditions")
    args = parser.parse_args()
    before = os.getloadavg()
    questions = load_questions()[: args.questions]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        rows = scale_out(workdir, questions)
        drains = [
            drain_trial(workdir, "--drain_timeout_s 10 (default)"),
            drain_trial(workdir, "--drain_timeout_s 1", "--drain_timeout_s", "1"),
        ]
        scrape = scrape_cost(workdir)
    note = load_note(before, os.getloadavg()) + (f" {args.note}" if args.note else "")
    text = report(rows, drains, scrape, note)
    print(text)
    save_results(args, RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
