"""Many conversations on one server: realtime mode with 1, 2 and 4 SDK clients at once.

    python benchmarks/sessions.py                         # prints the table
    python benchmarks/sessions.py --write

One realtime server (default stack) serves every round.  In a round of N,
N clients built on the official `openai` SDK (connections/realtime/client.py)
each ask the benchmark's spoken questions in turn, streamed at real-time
pace, all at the same time; each measures, as an application would, end of
speech (the last speech sample sent) -> first audio delta received.  The
same questions also go through socket mode (one client, `listen_and_play`-
style raw PCM at real-time pace, end of speech -> first reply byte), so one
realtime session can be compared with socket mode in the same run.  CPU
seconds per turn is the server process's CPU time over the round divided by
the turns answered.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_sessions.md"
sys.path.insert(0, str(REPO))

from audio.pcm import load_audio  # noqa: E402
from benchmarks.latency import add_output_arguments, machine_description, percentile, pick_samples, save_results  # noqa: E402
from benchmarks.server_process import ServerProcess  # noqa: E402
from connections.realtime.client import connect, to_pcm24k  # noqa: E402


def cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def realtime_client(port: int, questions: list[np.ndarray], latencies: list[float], failures: list[str]) -> None:
    conversation = connect(port)
    try:
        conversation.wait_for("session.created", timeout=20)
        for index, speech in enumerate(questions):
            mark = len(conversation.events)
            speech_end = conversation.speak(to_pcm24k(speech, 16000), silence_s=0.6)
            try:
                first = conversation.wait_for("response.output_audio.delta", timeout=60, after=mark)[0]
                conversation.wait_for("response.done", timeout=60, after=mark)
            except TimeoutError as error:
                failures.append(f"question {index}: {error}")
                continue
            latencies.append((first.at - speech_end) * 1000)
            time.sleep(0.5)
    finally:
        conversation.close()


def realtime_round(port: int, sessions: int, questions: list[np.ndarray], pid: int) -> dict:
    latencies: list[float] = []
    failures: list[str] = []
    began, cpu = time.perf_counter(), cpu_seconds(pid)
    # Each client starts at a different question, so they do not all ask the same thing.
    threads = [
        threading.Thread(target=realtime_client, args=(port, questions[i:] + questions[:i], latencies, failures))
        for i in range(sessions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answered = len(latencies)
    return {
        "label": f"realtime, {sessions} session{'s' if sessions > 1 else ''}",
        "asked": sessions * len(questions), "answered": answered,
        "p50": percentile(latencies, 50), "p90": percentile(latencies, 90),
        "cpu_per_turn": (cpu_seconds(pid) - cpu) / max(1, answered), "wall_s": time.perf_counter() - began,
        "failures": failures,
    }  # fmt: skip


def socket_round(recv_port: int, send_port: int, questions: list[np.ndarray], pid: int) -> dict:
    latencies: list[float] = []
    cpu = cpu_seconds(pid)
    arrivals: list[float] = []
    stop_reading = threading.Event()
    replies = socket.create_connection(("127.0.0.1", send_port))
    replies.settimeout(0.05)

    def read() -> None:
        while not stop_reading.is_set():
            try:
                if replies.recv(65536):
                    arrivals.append(time.perf_counter())
            except TimeoutError:
                continue
            except OSError:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    with socket.create_connection(("127.0.0.1", recv_port)) as audio:
        for speech in questions:
            padded = np.concatenate([speech, np.zeros(int(0.6 * 16000), np.int16)])
            began = time.perf_counter()
            speech_end = began + len(speech) / 16000
            for index, start in enumerate(range(0, len(padded), 512)):
                audio.sendall(padded[start : start + 512].astype("<i2").tobytes())
                delay = began + (index + 1) * 512 / 16000 - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            deadline = time.perf_counter() + 60
            while time.perf_counter() < deadline and not any(at > speech_end for at in arrivals):
                audio.sendall(bytes(1024))
                time.sleep(0.032)
            first = next((at for at in arrivals if at > speech_end), None)
            if first is not None:
                latencies.append((first - speech_end) * 1000)
            # let the reply play out (the server is half duplex)
            while time.perf_counter() - (arrivals[-1] if arrivals else 0) < 1.0:
                audio.sendall(bytes(1024))
                time.sleep(0.032)
    stop_reading.set()
    reader.join(2)
    replies.close()
    return {
        "label": "socket mode, 1 client", "asked": len(questions), "answered": len(latencies),
        "p50": percentile(latencies, 50), "p90": percentile(latencies, 90),
        "cpu_per_turn": (cpu_seconds(pid) - cpu) / max(1, len(latencies)), "failures": [],
    }  # fmt: skip


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(rows: list[dict], files: int, note: str) -> str:
    lines = [
        "# Concurrent sessions",
        "",
        "`python benchmarks/sessions.py --write`: one server, N clients on the "
        "official `openai` SDK asking the same "
        f"{files} spoken questions each, at real-time pace, all at once. Latency is end of speech "
        "(last speech sample sent) → first reply audio received, as the client sees it.",
        "",
        f"Machine: {machine_description()}. {note}",
        "",
        "| run | turns answered / asked | end of speech → first audio p50 / p90 ms | CPU s per turn |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | {row['answered']} / {row['asked']} | {fmt(row['p50'])} / {fmt(row['p90'])} "
            f"| {fmt(row['cpu_per_turn'], 2)} |"
        )
    socket_row = next((r for r in rows if r["label"].startswith("socket")), None)
    single = next((r for r in rows if r["label"] == "realtime, 1 session"), None)
    if socket_row and single and socket_row["p50"] and single["p50"]:
        ratio = single["p50"] / socket_row["p50"]
        lines += ["", f"One realtime session / socket mode, p50: {ratio:.2f}."]
    failures = [f"- {row['label']}: {failure}" for row in rows for failure in row["failures"]]
    if failures:
        lines += ["", "Failures:", *failures]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="1,2,4", help="concurrent sessions per round")
    parser.add_argument("--human", type=int, default=4, help="human clips added to the six spoken questions")
    add_output_arguments(parser, RESULTS)
    parser.add_argument("--note", default="", help="a line about the conditions (e.g. other load)")
    args = parser.parse_args()
    samples = pick_samples(args.human)
    questions = [load_audio(sample.path) for sample in samples]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess("socket", Path(tmp), suffix="-socket")
        try:
            rows.append(socket_round(server.recv_port, server.send_port, questions, server.process.pid))
        finally:
            server.stop()
        counts = [int(n) for n in args.sessions.split(",")]
        server = ServerProcess("realtime", Path(tmp), "--max_sessions", str(max(counts)), suffix="-realtime")
        try:
            for count in counts:
                rows.append(realtime_round(server.port, count, questions, server.process.pid))
                print(rows[-1], flush=True)
        finally:
            server.stop()
    text = report(rows, len(questions), args.note)
    print(text)
    save_results(args, RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
