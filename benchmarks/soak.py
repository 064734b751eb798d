"""Soak and fuzz: does the server keep answering, at a steady size, through hours of faults?

    python benchmarks/soak.py                        # 300 turns, prints the report
    python benchmarks/soak.py --turns 60 --cycles 200 --write   # shorter; replaces RESULTS_soak.md

One server on the real models (the default stack), started as a user starts
it, and one client that asks recorded questions (the shared set's spoken
questions and general-knowledge questions, in turn) faster than real time
and waits for each answer.  Between turns it does what real clients do:

- reconnects both sockets every `--reconnect_every` turns;
- every `--garbage_every` turns a second client connects, sends random bytes
  of odd length (half a sample at the end) and leaves; the real client then
  reconnects (the newest client wins);
- every `--stall_every` turns a client asks for a long answer, then stops
  reading its replies (a frozen app) until the server drops it
  (`--send_timeout_s`); the real client then comes back;
- once, `--cycles` bare connect/close cycles on both ports.

Reported: turns answered against turns asked, server crashes, resident memory
after warm-up and at the end, threads and open descriptors at the start and
the end, reconnect times, and the time to answer the first turn after each
kind of fault against an undisturbed turn.  Last, Ctrl-C (SIGINT) and SIGTERM
are sent while a client is stalled, and the time to exit is measured.

A client is one class per server mode (`CLIENTS`); the server is started and
stopped as the tests do (benchmarks/server_process.py).  `--mode realtime` soaks the realtime server through the
official SDK: garbage is sent as undecodable messages, bad JSON, bad base64
and odd-length audio; a stalled client stops reading its WebSocket; the bare
cycles open and close whole conversations.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from audio.pcm import load_audio  # noqa: E402
from benchmarks.latency import add_output_arguments, machine_description, save_results  # noqa: E402
from benchmarks.server_process import ServerProcess  # noqa: E402

SHARED_AUDIO = Path(os.environ.get("S2S_SHARED_AUDIO", REPO.parent / "shared" / "audio"))
RESULTS = REPO / "benchmarks" / "RESULTS_soak.md"
RATE = 16000
LONG_QUESTION = "Give me five tips for sleeping well, one full sentence for each tip."
REFERENCE = "What is the capital of France?"  # questions/q01.wav, the first of questions()


# --- clients, one per mode ---------------------------------------------------------------


class ReplyReader(threading.Thread):
    """Reads a reply connection continuously, as a client that plays replies does."""

    def __init__(self, conn: socket.socket) -> None:
        super().__init__(daemon=True)
        self.conn = conn
        self.received = 0
        self.first_byte_at: float | None = None
        self.closed = threading.Event()

    def run(self) -> None:
        self.conn.settimeout(0.2)
        while not self.closed.is_set():
            try:
                data = self.conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            if self.first_byte_at is None:
                self.first_byte_at = time.perf_counter()
            self.received += len(data)
        self.closed.set()


class SocketClient:
    """The socket protocol: raw int16 16 kHz in on one port, replies out on the other."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.audio: socket.socket | None = None
        self.reader: ReplyReader | None = None

    def connect(self) -> float:
        """Open both connections; seconds it took."""
        began = time.perf_counter()
        reply = socket.create_connection(("127.0.0.1", self.server.send_port), timeout=10)
        self.audio = socket.create_connection(("127.0.0.1", self.server.recv_port), timeout=10)
        self.reader = ReplyReader(reply)
        self.reader.start()
        took = time.perf_counter() - began
        time.sleep(0.1)  # the server has taken both before the question starts
        return took

    def reconnect_audio(self) -> None:
        if self.audio is not None:
            self.audio.close()
        self.audio = socket.create_connection(("127.0.0.1", self.server.recv_port), timeout=10)
        time.sleep(0.1)

    def close(self) -> None:
        if self.audio is not None:
            self.audio.close()
            self.audio = None
        if self.reader is not None:
            self.reader.closed.set()
            self.reader.conn.close()
            self.reader.join(2)
            self.reader = None

    def ask(self, speech: np.ndarray, timeout: float = 120) -> Turn:
        """Send a question (then silence, so the turn ends) at once, faster than
        real time, and wait for the server to log its answer."""
        assert self.audio is not None and self.reader is not None
        before = len(self.server.turns())
        received_before = self.reader.received
        self.reader.first_byte_at = None
        payload = np.concatenate([np.zeros(RATE // 4, np.int16), speech, np.zeros(RATE, np.int16)])
        began = time.perf_counter()
        self.audio.sendall(payload.astype("<i2").tobytes())
        turns = self.server.wait_for_turns(before + 1, timeout)
        answered_at = time.perf_counter()
        time.sleep(0.2)  # the last reply bytes still in flight
        record = turns[before] if len(turns) > before else None
        first = self.reader.first_byte_at
        return Turn(
            record=record,
            seconds=answered_at - began,
            first_audio_s=None if first is None else first - began,
            reply_bytes=self.reader.received - received_before,
        )

    def garbage_burst(self, rng: random.Random) -> int:
        """Another client sends random bytes of odd length and leaves; returns how many."""
        size = rng.randrange(1, 6000) | 1
        with socket.create_connection(("127.0.0.1", self.server.recv_port), timeout=10) as intruder:
            intruder.sendall(rng.randbytes(size))
            time.sleep(0.05)
        return size

    def stall(self, speech: np.ndarray) -> list[socket.socket]:
        """A client asks for a long answer and never reads it; returns its
        sockets, for the caller to close once the server has given up on it."""
        reply = socket.socket()
        reply.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reply.connect(("127.0.0.1", self.server.send_port))
        audio = socket.create_connection(("127.0.0.1", self.server.recv_port), timeout=10)
        time.sleep(0.1)
        payload = np.concatenate([speech, np.zeros(RATE, np.int16)])
        audio.sendall(payload.astype("<i2").tobytes())
        return [reply, audio]

    def bare_cycles(self, count: int) -> list[float]:
        """Connect and close, on both ports in turn; seconds per cycle."""
        times = []
        for _ in range(count):
            began = time.perf_counter()
            for port in (self.server.recv_port, self.server.send_port):
                socket.create_connection(("127.0.0.1", port), timeout=10).close()
            times.append(time.perf_counter() - began)
        return times


class RealtimeClient:
    """The realtime API through the official `openai` SDK (connections/realtime/client.py)."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.conversation = None

    def _url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/v1/realtime?model=s2s"

    def connect(self) -> float:
        from connections.realtime.client import connect

        began = time.perf_counter()
        self.conversation = connect(self.server.port)
        self.conversation.wait_for("session.created", timeout=10)
        return time.perf_counter() - began

    def reconnect_audio(self) -> None:
        self.close()
        self.connect()

    def close(self) -> None:
        if self.conversation is not None:
            self.conversation.close()
            self.conversation = None

    def ask(self, speech: np.ndarray, timeout: float = 120) -> Turn:
        """Send a question (then silence) faster than real time and wait for response.done."""
        from connections.realtime.client import to_pcm24k

        assert self.conversation is not None
        before = len(self.server.turns())
        mark = len(self.conversation.events)
        pcm = to_pcm24k(np.concatenate([np.zeros(RATE // 4, np.int16), speech, np.zeros(RATE, np.int16)]), RATE)
        began = time.perf_counter()
        for start in range(0, len(pcm), 48000):  # 1 s appends
            self.conversation.append(pcm[start : start + 48000])
        try:
            self.conversation.wait_for("response.done", timeout=timeout, after=mark)
        except TimeoutError:
            pass
        answered_at = time.perf_counter()
        turns = self.server.wait_for_turns(before + 1, 5)
        deltas = [r for r in self.conversation.events[mark:] if r.event.type == "response.output_audio.delta"]
        return Turn(
            record=turns[before] if len(turns) > before else None,
            seconds=answered_at - began,
            first_audio_s=deltas[0].at - began if deltas else None,
            reply_bytes=len(self.conversation.reply_audio(mark)) * 2,
        )

    def garbage_burst(self, rng: random.Random) -> int:
        """Another client sends garbage (bytes of odd length, bad JSON, bad base64,
        odd-length audio) and leaves; returns how many bytes."""
        import base64

        from websockets.sync.client import connect as ws_connect

        size = rng.randrange(1, 6000) | 1
        with ws_connect(self._url(), open_timeout=10) as intruder:
            intruder.recv(timeout=10)  # session.created
            intruder.send(rng.randbytes(size))
            intruder.send("{not json")
            intruder.send(json.dumps({"type": "input_audio_buffer.append", "audio": "@@"}))
            intruder.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(rng.randbytes(size)).decode()}))  # fmt: skip
            time.sleep(0.05)
        return size

    def stall(self, speech: np.ndarray) -> list:
        """A client asks for a long answer and never reads it (a tiny receive
        buffer, nothing read); returns its socket for the caller to close."""
        import base64

        from connections.realtime.client import to_pcm24k

        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", self.server.port))
        from websockets.sync.client import connect as ws_connect

        websocket = ws_connect(self._url(), sock=raw, open_timeout=10)
        pcm = to_pcm24k(np.concatenate([speech, np.zeros(RATE, np.int16)]), RATE)
        for start in range(0, len(pcm), 48000):
            websocket.send(json.dumps({"type": "input_audio_buffer.append",
                                       "audio": base64.b64encode(pcm[start : start + 48000]).decode()}))  # fmt: skip
        return [raw]

    def bare_cycles(self, count: int) -> list[float]:
        """Open a conversation and close it at once; seconds per cycle."""
        from websockets.sync.client import connect as ws_connect

        times = []
        for _ in range(count):
            began = time.perf_counter()
            with ws_connect(self._url(), open_timeout=10) as websocket:
                websocket.recv(timeout=10)  # session.created
            times.append(time.perf_counter() - began)
        return times


CLIENTS: dict[str, Callable[[ServerProcess], SocketClient | RealtimeClient]] = {
    "socket": SocketClient,
    "realtime": RealtimeClient,
}


@dataclass
class Turn:
    record: dict | None
    seconds: float
    first_audio_s: float | None
    reply_bytes: int

    @property
    def answered(self) -> bool:
        return bool(
            self.record and self.record.get("transcript") and not self.record.get("error") and self.reply_bytes > 0
        )


# --- the run ------------------------------------------------------------------------------


def questions() -> list[tuple[str, np.ndarray]]:
    """The recorded questions; the first is the reference question."""
    found = []
    for folder, name_column, text_column in (("questions", "file", "transcript"), ("qa", "file", "question")):
        with open(SHARED_AUDIO / folder / ("transcripts.tsv" if folder == "questions" else "questions.tsv")) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                if row[name_column].startswith("conversation"):
                    continue
                found.append((row[text_column], load_audio(SHARED_AUDIO / folder / row[name_column])))
    return found


def spoken(text: str) -> np.ndarray:
    """A question nobody recorded, spoken by the packaged Piper voice."""
    import queue

    from conversation.turn import Turn as PipelineTurn
    from TTS.piper_handler import PiperTTSHandler
    from utils.messages import LLMSentence

    tts = PiperTTSHandler(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs={"output_sample_rate": RATE})
    pieces = [out.samples for out in tts.process(LLMSentence(text, "en", PipelineTurn()))]
    return np.concatenate([np.zeros(RATE // 4, np.int16), *pieces])


@dataclass
class Report:
    asked: int = 0
    answered: int = 0
    plain_seconds: list[float] = field(default_factory=list)
    reference_seconds: list[float] = field(default_factory=list)
    after_fault: dict[str, list[float]] = field(default_factory=dict)
    unanswered: list[str] = field(default_factory=list)
    reconnect_s: list[float] = field(default_factory=list)
    garbage_bytes: list[int] = field(default_factory=list)
    stalls: list[str] = field(default_factory=list)
    cycles_s: list[float] = field(default_factory=list)
    figures: dict[str, dict[str, int]] = field(default_factory=dict)
    crashes: list[str] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    rss_trace: list[int] = field(default_factory=list)  # every 10 turns


def start_server(args: argparse.Namespace, workdir: Path) -> ServerProcess:
    """The server under test, its log and metrics files named by when it started."""
    return ServerProcess(
        args.mode, workdir, *args.server_flags.split(), start_timeout_s=300, suffix=f"-{int(time.time() * 1000)}"
    )


def soak(args: argparse.Namespace, workdir: Path) -> Report:
    report = Report()
    rng = random.Random(args.seed)
    asked = questions()
    long_question = spoken(LONG_QUESTION)
    server = start_server(args, workdir)
    client = CLIENTS[args.mode](server)
    report.figures["start"] = server.figures()
    began = time.perf_counter()
    report.reconnect_s.append(client.connect())
    # Warm-up includes the long answer the stalled clients ask for: the TTS's
    # memory arena keeps the size of the longest sentence it has spoken, a
    # high-water mark, not growth; it is reached here, before the figures.
    client.ask(long_question)
    fault: str | None = None
    cycles_at = max(1, args.turns // 2)
    for index in range(args.turns):
        number = index + 1
        if not server.alive():
            report.crashes.append(f"server exited with status {server.process.returncode} before turn {number}")
            break
        if index and args.stall_every and index % args.stall_every == 0:
            client.close()
            report.stalls.append(stall_once(server, client, long_question))
            report.reconnect_s.append(client.connect())
            fault = "a stalled reply client was dropped"
        elif index and args.reconnect_every and index % args.reconnect_every == 0:
            client.close()
            report.reconnect_s.append(client.connect())
            fault = "reconnect"
        if index == cycles_at and args.cycles:
            client.close()
            report.cycles_s = client.bare_cycles(args.cycles)
            report.reconnect_s.append(client.connect())
            fault = f"{args.cycles} bare connect/close cycles"
        if index and args.garbage_every and index % args.garbage_every == 0 and fault is None:
            report.garbage_bytes.append(client.garbage_burst(rng))
            client.reconnect_audio()
            fault = "garbage burst (then the client's audio reconnects)"
        # After a fault, and as its undisturbed baseline every 10th turn, the
        # same reference question: its answer time is then comparable.
        reference = fault is not None or index % 10 == 7
        text, speech = asked[0] if reference else asked[index % len(asked)]
        turn = client.ask(speech)
        report.asked += 1
        if turn.answered:
            report.answered += 1
            if fault is not None:
                report.after_fault.setdefault(fault, []).append(turn.seconds)
            elif reference:
                report.reference_seconds.append(turn.seconds)
            else:
                report.plain_seconds.append(turn.seconds)
        else:
            why = turn.record.get("error") if turn.record else "no answer logged within the timeout"
            report.unanswered.append(f"turn {number} ({text!r}): {why or 'nothing heard'}")
        fault = None
        if number == args.warmup_turns:
            report.figures["after warm-up"] = server.figures()
        if number == args.turns // 2:
            report.figures["half way"] = server.figures()
        if number % 10 == 0:
            figures = server.figures()
            report.rss_trace.append(figures["rss_mib"])
            print(f"{number}/{args.turns} turns, {report.answered} answered, {figures}", flush=True)
    report.wall_s = time.perf_counter() - began
    if server.alive():
        client.close()
        time.sleep(1.0)
        report.figures["end"] = server.figures()
    if "Traceback" in server.log.read_text():
        report.crashes.append("a traceback in the server log")
    report.stops.append(stop_while_stalled(server, client, long_question, signal.SIGINT))
    second = start_server(args, workdir)
    report.stops.append(stop_while_stalled(second, CLIENTS[args.mode](second), long_question, signal.SIGTERM))
    return report


def stall_once(server: ServerProcess, client: SocketClient, long_question: np.ndarray) -> str:
    """A client that asks, then never reads; the server must drop it on its own."""
    mark = server.log_size()
    began = time.perf_counter()
    stalled = client.stall(long_question)
    dropped = server.wait_for_log("read nothing for", mark, timeout=120)
    took = time.perf_counter() - began
    for conn in stalled:
        conn.close()
    if dropped:
        return f"dropped {took:.1f} s after its question"
    return f"not dropped within {took:.0f} s (its reply may have fit in the socket buffers)"


def stop_while_stalled(server: ServerProcess, client: SocketClient, long_question: np.ndarray, signum: int) -> str:
    """Signal the server while a client's reply is stuck in a send."""
    name = signal.Signals(signum).name
    if not server.alive():
        return f"{name}: server not running"
    mark = server.log_size()
    stalled = client.stall(long_question)
    stuck = server.wait_for_log("reply:", mark, timeout=120)  # the LLM has answered; the sender is busy
    time.sleep(1.0)
    code = server.stop(signum, timeout_s=30)
    took = server.stop_s
    for conn in stalled:
        conn.close()
    when = "while a reply client was stalled" if stuck else "(the stalled reply never started)"
    return f"{name} {when}: exit status {code}, gone {took:.2f} s after the signal"


# --- the report -----------------------------------------------------------------------------


def p50(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


def render(args: argparse.Namespace, report: Report) -> str:
    figures = report.figures
    start, warm, end = figures.get("start", {}), figures.get("after warm-up", {}), figures.get("end", {})
    half = figures.get("half way", {})
    growth = f"{(end['rss_mib'] - warm['rss_mib']) / warm['rss_mib'] * 100:+.1f}%" if warm and end else "not measured"
    cycles = sorted(report.cycles_s)
    lines = [
        f"# Soak: the {args.mode} server under hours of faults",
        "",
        f"Machine: {machine_description()}.  ",
        f"Generated by `python benchmarks/soak.py {' '.join(sys.argv[1:])}` on {time.strftime('%Y-%m-%d')}: "
        f"{args.turns} turns{'' if args.turns >= 300 else ' (a shorter run than the 300-turn default)'}, "
        f"default stack, {report.wall_s / 60:.1f} min.  Other engineers' jobs shared the 2 cores during the run, "
        "so absolute times are noisy; compare the rows of one run.",
        "",
        "| | |",
        "|---|---|",
        f"| turns answered / asked | **{report.answered} / {report.asked}** |",
        f"| server crashes | **{len(report.crashes)}** {'; '.join(report.crashes)} |",
        f"| resident memory: start / after warm-up ({args.warmup_turns} turns) / turn {args.turns // 2} / end (MiB) | "
        f"{start.get('rss_mib', '-')} / {warm.get('rss_mib', '-')} / {half.get('rss_mib', '-')} / "
        f"{end.get('rss_mib', '-')} (growth after warm-up **{growth}**) |",
        f"| threads: start / after {args.warmup_turns} turns / end | {start.get('threads', '-')} / "
        f"{warm.get('threads', '-')} / {end.get('threads', '-')} |",
        f"| open file descriptors: start / after {args.warmup_turns} turns / end | {start.get('fds', '-')} / "
        f"{warm.get('fds', '-')} / {end.get('fds', '-')} |",
        f"| client (re)connections, both ports (ms, p50 / max) | {p50([t * 1000 for t in report.reconnect_s])} / "
        f"{max(report.reconnect_s) * 1000:.1f} over {len(report.reconnect_s)} |",
    ]
    if cycles:
        lines.append(
            f"| {len(cycles)} bare connect/close cycles, both ports | total {sum(cycles):.2f} s; per cycle p50 "
            f"{cycles[len(cycles) // 2] * 1000:.2f} ms, p99 {cycles[int(len(cycles) * 0.99)] * 1000:.2f} ms, max "
            f"{cycles[-1] * 1000:.1f} ms; over 0.5 s: {sum(t > 0.5 for t in cycles)} |"
        )
    lines += [
        f"| garbage bursts (odd lengths, random bytes) | {len(report.garbage_bytes)}, "
        f"{min(report.garbage_bytes, default=0)}-{max(report.garbage_bytes, default=0)} bytes |",
        f"| stalled reply clients | {'; '.join(report.stalls) or 'none'} |",
    ]
    lines += [f"| stop | {stop} |" for stop in report.stops]
    halves = ["not measured", "not measured"]
    if warm and half and end:
        halves = [
            f"{(half['rss_mib'] - warm['rss_mib']) / warm['rss_mib'] * 100:+.1f}%",
            f"{(end['rss_mib'] - half['rss_mib']) / half['rss_mib'] * 100:+.1f}%",
        ]
    lines += [
        "",
        f"Resident memory every 10 turns (MiB): {', '.join(map(str, report.rss_trace))}.  The warm-up asks the long "
        "question the stalled clients ask, once, answered: Piper's ONNX runtime keeps the memory of the longest "
        "sentence it has spoken (one 30-word sentence took a bare Piper from 197 to 514 MiB; disabling its memory "
        "arena lowers that peak but costs about 25% more TTS time, measured in one run), and the speech "
        "recogniser and the LLM keep buffers sized by the longest turn and prompt so far: high-water marks, which "
        f"level off where a leak would not.  Growth over the first half of the run: {halves[0]}; over the second "
        f"half: {halves[1]}.",
    ]
    lines += [
        "",
        "Time from sending a question (at once, faster than real time) to the server logging its answer, in "
        f"seconds.  The first turn after each fault asks the same reference question ({REFERENCE!r}), and so "
        "does every tenth undisturbed turn, for comparison; the other turns cycle through the recorded questions "
        "(their answers differ in length).  A fault starts a new conversation (the chat is reset when a client "
        "comes or goes), so a first turn after one has a shorter prompt than the undisturbed reference turns.",
        "",
        "| turn | turns | p50 s | max s |",
        "|---|---|---|---|",
        f"| undisturbed, reference question | {len(report.reference_seconds)} | {p50(report.reference_seconds)} | "
        f"{max(report.reference_seconds, default=0):.2f} |",
    ]
    for fault, seconds in sorted(report.after_fault.items(), key=lambda item: str(item[0])):
        lines.append(f"| first after: {fault} | {len(seconds)} | {p50(seconds)} | {max(seconds):.2f} |")
    lines.append(
        f"| undisturbed, other questions | {len(report.plain_seconds)} | {p50(report.plain_seconds)} | "
        f"{max(report.plain_seconds, default=0):.2f} |"
    )
    if report.unanswered:
        lines += ["", "Not answered:", "", *[f"- {line}" for line in report.unanswered]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", default="socket", choices=sorted(CLIENTS), help="Which server mode to soak.")
    parser.add_argument("--turns", type=int, default=300, help="Questions asked and answered.")
    parser.add_argument("--reconnect_every", type=int, default=10, help="Reconnect both sockets every N turns.")
    parser.add_argument("--stall_every", type=int, default=50, help="A client that stops reading every N turns.")
    parser.add_argument("--garbage_every", type=int, default=5, help="A garbage burst every N turns.")
    parser.add_argument("--cycles", type=int, default=1000, help="Bare connect/close cycles (once, mid-run).")
    parser.add_argument("--warmup_turns", type=int, default=10, help="Memory is compared from after this turn.")
    parser.add_argument("--server_flags", default="", help="Extra flags for the server.")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--keep_logs", help="Keep the servers' logs and metrics in this folder.")
    add_output_arguments(parser, RESULTS)
    args = parser.parse_args()
    if args.keep_logs:
        Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
        report = soak(args, Path(args.keep_logs))
    else:
        with tempfile.TemporaryDirectory(prefix="s2s-soak-") as workdir:
            report = soak(args, Path(workdir))
    text = render(args, report)
    print(text)
    save_results(args, RESULTS, text)
    return 0 if report.answered == report.asked and not report.crashes else 1


if __name__ == "__main__":
    sys.exit(main())
