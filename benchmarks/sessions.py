"""Many conversations on one server: realtime mode with 1, 2 and 4 SDK clients asking at the same moment.

    python benchmarks/sessions.py                         # prints the table
    python benchmarks/sessions.py --write

One realtime server (default stack) serves every round.  In a round of N,
N clients built on the official `openai` SDK (connections/realtime/client.py)
each ask the benchmark's spoken questions in turn, streamed at real-time
pace; before each question the clients wait for each other and pad their
recording with leading silence so that all N questions end at the same
moment (the worst case: every answer is wanted at once).  Each client
measures, as an application would, end of speech (the last speech sample
sent) -> first audio delta received, and plays the reply as it arrives
(`Conversation.playback`: each delta after the one before it): a gap is a
moment its playback ran dry after the reply's audio had started.  Gaps over
150 ms per reply and seconds stalled per reply (those gaps together, as the
server's own `audio_stalls` / `s2s_audio_stalled_seconds_total` count them;
the server's count is shown beside the client's) are counted per round; a second set of rounds asks for
four-sentence replies (requests spoken by the packaged Piper voice), where
running dry would show.

Cross-talk: a turn whose transcript, or whose reply, matches another
session's question of the same moment better than its own (each session
must hear, and answer, its own user).  A transcript that holds less than
half of its own question's words is listed as misheard (not cross-talk).

The same spoken questions also go through socket mode (one client, raw PCM
at real-time pace, end of speech -> first reply byte, the reply played as
it arrives), so one realtime session can be compared with socket mode in
the same run.  CPU seconds per turn is the server process's CPU time over
the round divided by the turns answered.  `--baseline_tree` runs the same
realtime rounds on another checkout's server, labelled 'before'.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_sessions.md"
sys.path.insert(0, str(REPO))

from audio.pcm import load_audio  # noqa: E402
from benchmarks.latency import (  # noqa: E402
    add_output_arguments,
    invocation,
    machine_description,
    machine_details,
    percentile,
    pick_samples,
    save_results,
)
from benchmarks.server_process import ServerProcess  # noqa: E402
from benchmarks.socket_client import ReplyRecorder, stream  # noqa: E402
from connections.realtime.client import RATE, Conversation, connect, to_pcm24k  # noqa: E402
from conversation.playback import STALL_GAP_S, PlaybackLog  # noqa: E402

# Requests for four-sentence replies, spoken by the packaged Piper voice.
LONG_REQUESTS = [
    "Give me four tips for sleeping better, in four sentences.",
    "Describe the city of Paris to a visitor, in four sentences.",
    "Explain how a bicycle works, in four sentences.",
    "What should I pack for a week of hiking? Answer in four sentences.",
]
# Words that say nothing of a question's topic (cross-talk is judged on the others).
FILLER_WORDS = frozenset(
    "what which when where who how many much there the this that with your you please tell give can could "
    "would should about answer sentences four good some".split()
)
REPLY_CROSSES_AT = 1 / 3
SOCKET_RATE = 16000  # socket mode's reply audio: raw int16 at 16 kHz


@dataclass
class Question:
    audio: np.ndarray  # int16 at 16 kHz
    text: str


@dataclass
class Reply:
    """One answered turn, as its client saw and played it."""

    question: str
    first_audio_ms: float
    gaps_s: list[float]  # each time playback ran dry for over STALL_GAP_S (seconds), in order
    dry_s: float  # every moment playback ran dry, short ones too, all together
    sentences: int = 0
    heard: str = ""
    reply: str = ""


@dataclass
class Round:
    label: str
    asked: int = 0
    replies: list[Reply] = field(default_factory=list)
    cross_talk: list[str] = field(default_factory=list)
    misheard: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    cpu_per_turn: float | None = None
    server_stalls: int = 0  # the stalls the server itself counted (its per-turn `audio_stalls`)
    wall_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def latencies(self) -> list[float]:
        return [reply.first_audio_ms for reply in self.replies]

    @property
    def stalled_s(self) -> list[float]:
        """Per reply, its gaps over STALL_GAP_S together (as /metrics' `s2s_audio_stalled_seconds_total`)."""
        return [sum(reply.gaps_s) for reply in self.replies]

    @property
    def gaps(self) -> int:
        return sum(len(reply.gaps_s) for reply in self.replies)


def cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def dry_spells(log: PlaybackLog) -> tuple[list[float], float]:
    """A reply played as it arrived: its gaps over STALL_GAP_S, and how long
    playback ran dry in all (every wait for the next piece, short ones too)."""
    if log.started_at is None or log.plays_until is None:
        return [], 0.0
    return list(log.stalls), max(0.0, log.plays_until - log.started_at - log.sent_s)


def topic_words(text: str) -> set[str]:
    return {word for word in re.findall(r"[a-z']+", text.lower()) if len(word) > 2 and word not in FILLER_WORDS}


def share(text: str, question: str) -> float:
    """How much of `question`'s topic words `text` holds (0..1)."""
    wanted = topic_words(question)
    return len(wanted & topic_words(text)) / len(wanted) if wanted else 0.0


def crossed(text: str, own: str, others: list[str], at_least: float = 0.0) -> str | None:
    """Another question `text` matches better than its own `own` (and holds
    at least `at_least` of that question's topic words), if any."""
    mine = share(text, own)
    return next((other for other in others if other != own and share(text, other) > max(mine, at_least - 1e-9)), None)


def count_sentences(text: str) -> int:
    return len(re.findall(r"[.!?](\s|$)", text.strip() + " "))


def ask(conversation: Conversation, question: Question, pad_s: float, result: Round) -> Reply | None:
    """Speak one question (after `pad_s` of silence) and follow its reply to the end."""
    mark = len(conversation.events)
    pcm = bytes(int(pad_s * RATE) * 2) + to_pcm24k(question.audio, 16000)
    speech_end = conversation.speak(pcm, silence_s=0.6)
    try:
        done = conversation.wait_for("response.done", timeout=180, after=mark)[0].event.response
    except TimeoutError as error:
        with result.lock:
            result.failures.append(f"{question.text[:40]!r}: {str(error)[:200]}")
        return None
    deltas = [r for r in conversation.events[mark:] if r.event.type == "response.output_audio.delta"]
    if not deltas:
        with result.lock:
            result.failures.append(f"{question.text[:40]!r}: no audio (response {done.status})")
        return None
    played = conversation.playback(done.id)
    gaps, dry = dry_spells(played)
    # The user hears the reply out before asking again (a client that gets
    # its audio ahead of time is still playing it at response.done): a next
    # question spoken over it would be an interruption, which cuts the
    # reply's history short and flatters the next prompt's time.
    time.sleep(max(0.0, played.silent_at() - time.perf_counter()))
    transcripts = conversation.of("conversation.item.input_audio_transcription.completed", mark)
    reply_text = " ".join(e.transcript for e in conversation.of("response.output_audio_transcript.done", mark))
    return Reply(
        question.text, (deltas[0].at - speech_end) * 1000, gaps, dry, count_sentences(reply_text),
        transcripts[-1].transcript if transcripts else "", reply_text,
    )  # fmt: skip


def judge(result: Round, asked_together: list[Reply]) -> None:
    """Cross-talk and mishearing among the replies to questions asked at one moment."""
    questions = [reply.question for reply in asked_together]
    with result.lock:
        for reply in asked_together:
            # A reply may touch another topic by chance: it crosses only holding a third of that question's words.
            other = crossed(reply.heard, reply.question, questions) or crossed(
                reply.reply, reply.question, questions, at_least=REPLY_CROSSES_AT
            )
            if other is not None:
                result.cross_talk.append(
                    f"asked {reply.question!r}, heard {reply.heard!r}, replied {reply.reply[:120]!r} "
                    f"(closer to {other!r})"
                )
            elif reply.heard and share(reply.heard, reply.question) < 0.5:
                result.misheard.append(f"{reply.question!r} heard as {reply.heard!r}")


def realtime_client(
    port: int, questions: list[Question], pads: list[float], meet: threading.Barrier, moments: list[list], result: Round
) -> None:
    conversation = connect(port)
    try:
        conversation.wait_for("session.created", timeout=60)
        for moment, (question, pad) in enumerate(zip(questions, pads, strict=True)):
            meet.wait(timeout=600)  # every client starts its question together...
            reply = ask(conversation, question, pad, result)  # ...padded to end its speech with the others
            if reply is not None:
                with result.lock:
                    result.replies.append(reply)
                    moments[moment].append(reply)
            time.sleep(0.3)
    finally:
        conversation.close()


def server_stalls(server: ServerProcess, since: int) -> int:
    """The stalls the server logged for its turns from the `since`-th on."""
    return sum(turn.get("audio_stalls") or 0 for turn in server.turns()[since:])


def realtime_round(server: ServerProcess, sessions: int, questions: list[Question], label: str) -> Round:
    result = Round(label, asked=sessions * len(questions))
    port, pid, logged = server.port, server.process.pid, len(server.turns())
    began, cpu = time.perf_counter(), cpu_seconds(pid)
    # Client i asks the questions from the i-th on, so they do not all ask the same thing at once.
    orders = [questions[i:] + questions[:i] for i in range(sessions)]
    lengths = [[len(order[k].audio) / 16000 for order in orders] for k in range(len(questions))]
    meet = threading.Barrier(sessions)
    moments: list[list[Reply]] = [[] for _ in questions]
    threads = [
        threading.Thread(
            target=realtime_client,
            args=(port, order, [max(lengths[k]) - lengths[k][i] for k in range(len(questions))], meet, moments, result),
        )
        for i, order in enumerate(orders)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for asked_together in moments:
        judge(result, asked_together)
    result.cpu_per_turn = (cpu_seconds(pid) - cpu) / max(1, len(result.replies))
    time.sleep(1.0)  # a realtime turn is logged once its audio has played out
    result.server_stalls = server_stalls(server, logged)
    result.wall_s = time.perf_counter() - began
    print(f"{label}: {len(result.replies)} / {result.asked} in {result.wall_s:.0f} s", flush=True)
    return result


def socket_round(server: ServerProcess, questions: list[Question]) -> Round:
    """One socket-mode client: each question at real-time pace, its reply played as its bytes arrive."""
    result = Round("socket mode, 1 client", asked=len(questions))
    recv_port, send_port, pid = server.recv_port, server.send_port, server.process.pid
    began_round, cpu = time.perf_counter(), cpu_seconds(pid)
    replies = ReplyRecorder(send_port)
    with socket.create_connection(("127.0.0.1", recv_port)) as audio:
        for question in questions:
            padded = np.concatenate([question.audio, np.zeros(int(0.6 * 16000), np.int16)])
            speech_end = time.perf_counter() + len(question.audio) / 16000
            stream(audio, padded)
            deadline = time.perf_counter() + 60
            while time.perf_counter() < deadline and replies.last_arrival() <= speech_end:
                audio.sendall(bytes(1024))
                time.sleep(0.032)
            # let the reply play out (the server is half duplex)
            while time.perf_counter() - replies.last_arrival() < 1.0:
                audio.sendall(bytes(1024))
                time.sleep(0.032)
            reply = [(at, size) for at, size in replies.arrivals if at > speech_end]
            if not reply:
                result.failures.append(f"{question.text[:40]!r}: no reply within 60 s")
                continue
            log = PlaybackLog(SOCKET_RATE)
            for at, size in reply:
                log.add("", size // 2, SOCKET_RATE, when=at)
            gaps, dry = dry_spells(log)
            result.replies.append(Reply(question.text, (reply[0][0] - speech_end) * 1000, gaps, dry))
    replies.close()
    result.cpu_per_turn = (cpu_seconds(pid) - cpu) / max(1, len(result.replies))
    result.server_stalls = server_stalls(server, 0)
    result.wall_s = time.perf_counter() - began_round
    print(f"{result.label}: {len(result.replies)} / {result.asked} in {result.wall_s:.0f} s", flush=True)
    return result


def spoken_requests() -> list[Question]:
    """LONG_REQUESTS spoken by the packaged Piper voice (16 kHz), as a user would ask them."""
    from benchmarks.harness import make_handler
    from TTS.piper_handler import PiperTTSHandler

    piper = make_handler(PiperTTSHandler, output_sample_rate=16000)
    return [Question(np.concatenate(list(piper.synthesize(text))), text) for text in LONG_REQUESTS]


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[Round]) -> list[str]:
    lines = [
        "| run | turns answered / asked | end of speech → first audio p50 / p90 ms "
        f"| gaps > {STALL_GAP_S * 1000:.0f} ms per reply "
        "| replies with a gap | seconds stalled per reply (mean / max) | stalls the server counted "
        "| sentences per reply | cross-talk | CPU s per turn |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        count = len(row.replies)
        stalled = row.stalled_s
        sentences = [reply.sentences for reply in row.replies if reply.sentences]
        lines.append(
            f"| {row.label} | {count} / {row.asked} "
            f"| {fmt(percentile(row.latencies, 50))} / {fmt(percentile(row.latencies, 90))} "
            f"| {fmt(row.gaps / count, 2) if count else '-'} | {sum(bool(r.gaps_s) for r in row.replies)} / {count} "
            f"| {fmt(float(np.mean(stalled)), 2) if stalled else '-'} / {fmt(max(stalled, default=None), 2)} "
            f"| {row.server_stalls} "
            f"| {fmt(float(np.mean(sentences)), 1) if sentences else '-'} "
            f"| {'-' if row.label.startswith('socket') else len(row.cross_talk)} | {fmt(row.cpu_per_turn, 2)} |"
        )
    return lines


def verdict(met: bool | None) -> str:
    return "no figure" if met is None else ("met" if met else "**not met**")


def goals(rows: list[Round]) -> list[str]:
    """Issue #21's goals for replies without gaps and four conversations at once, beside this run's figures."""
    now = [row for row in rows if not row.label.startswith("before")]
    by_label = {row.label: row for row in now}
    long_one = by_label.get("realtime, 1 session, four-sentence replies")
    fours = [row for row in now if row.label.startswith("realtime, 4 sessions")]
    four = by_label.get("realtime, 4 sessions")
    lines = ["## Goals", ""]
    if long_one is not None:
        lines.append(
            f"- 0 gaps > {STALL_GAP_S * 1000:.0f} ms in four-sentence replies with one session: {long_one.gaps} in "
            f"{len(long_one.replies)} replies ({verdict(long_one.gaps == 0 and bool(long_one.replies))})."
        )
    for row in fours:
        count = len(row.replies)
        lines.append(
            f"- ≤ 1 gap per 10 replies with 4 sessions ({row.label}): {row.gaps} in {count} replies, "
            f"{fmt(10 * row.gaps / count, 1) if count else '-'} per 10 "
            f"({verdict(bool(count) and row.gaps * 10 <= count)})."
        )
    if four is not None:
        p50 = percentile(four.latencies, 50)
        lines.append(
            f"- 4 sessions, end of speech → first audio p50 ≤ 1.5 s: {fmt(p50)} ms "
            f"({verdict(None if p50 is None else p50 <= 1500)})."
        )
    for row in fours:
        whole = len(row.replies) == row.asked and not row.cross_talk
        lines.append(
            f"- {row.label}: every turn answered, no cross-talk: {len(row.replies)} / {row.asked} answered, "
            f"{len(row.cross_talk)} crossed ({verdict(whole)})."
        )
    before = {row.label.removeprefix("before: "): row for row in rows if row.label.startswith("before")}
    single = by_label.get("realtime, 1 session")
    if single is not None and "realtime, 1 session" in before:
        then, p50 = percentile(before["realtime, 1 session"].latencies, 50), percentile(single.latencies, 50)
        if then and p50:
            lines.append(f"- One session not slower than before: p50 {p50:.0f} ms against {then:.0f} ms.")
    return lines


def gap_details(rows: list[Round]) -> list[str]:
    """Which replies ran dry, and for how long: to find out why."""
    lines = []
    for row in rows:
        for reply in row.replies:
            if reply.gaps_s:
                gaps = ", ".join(f"{gap:.2f}" for gap in reply.gaps_s)
                lines.append(
                    f"- {row.label}: {reply.question[:50]!r} (first audio {reply.first_audio_ms:.0f} ms, "
                    f"{reply.sentences or '?'} sentences): gaps of {gaps} s; ran dry {reply.dry_s:.2f} s in all"
                )
    return lines


def report(rows: list[Round], files: int, note: str, load: tuple[tuple[float, ...], tuple[float, ...]]) -> str:
    lines = [
        "# Concurrent sessions",
        "",
        f"`{invocation('benchmarks/sessions.py')}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: one "
        f"realtime server (default stack), N clients on the official `openai` SDK asking the same {files} spoken "
        "questions each, all at the same moment (each question padded with leading silence so that every "
        "client's speech ends together), at real-time pace; then the same with spoken requests for four-sentence "
        "replies (Piper voice). Latency is end of speech (last speech sample sent) → first reply audio received, "
        "as the client sees it. Each client plays the reply as it arrives (each audio delta after the one before "
        "it): a gap is a moment its playback ran dry after the reply's audio had started; seconds stalled is "
        f"a reply's gaps over {STALL_GAP_S * 1000:.0f} ms together, as the server's own stall count (beside it) "
        "judges them from when it put each piece out. Cross-talk: a turn whose transcript "
        "or reply matches another session's question of the same moment better than its own.",
        "",
        f"Machine: {machine_description()}. Load average (1, 5, 15 min) at the start "
        f"{', '.join(f'{v:.1f}' for v in load[0])}; at the end {', '.join(f'{v:.1f}' for v in load[1])}. {note}",
        "",
        *table(rows),
    ]
    socket_row = next((r for r in rows if r.label.startswith("socket")), None)
    single = next((r for r in rows if r.label == "realtime, 1 session"), None)
    if socket_row and single and socket_row.latencies and single.latencies:
        ratio = percentile(single.latencies, 50) / percentile(socket_row.latencies, 50)
        lines += ["", f"One realtime session / socket mode, p50: {ratio:.2f}."]
    lines += ["", *goals(rows)]
    details = gap_details(rows)
    if details:
        lines += ["", "## Replies that ran dry", "", *details]
    crossed_turns = [f"- {row.label}: {turn}" for row in rows for turn in row.cross_talk]
    if crossed_turns:
        lines += ["", "## Cross-talk", "", *crossed_turns]
    misheard = [f"- {row.label}: {turn}" for row in rows for turn in row.misheard]
    if misheard:
        lines += ["", "## Misheard (own question, less than half its words)", "", *misheard]
    failures = [f"- {row.label}: {failure}" for row in rows for failure in row.failures]
    if failures:
        lines += ["", "## Failures", "", *failures]
    lines += ["", "## Machine", "", machine_details()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="1,2,4", help="concurrent sessions per round (spoken questions)")
    parser.add_argument("--long_sessions", default="1,4", help="concurrent sessions per four-sentence round")
    parser.add_argument("--long_requests", type=int, default=len(LONG_REQUESTS), help="how many requests in one")
    parser.add_argument("--questions", type=int, default=6, help="how many of the six spoken questions to ask")
    parser.add_argument("--human", type=int, default=4, help="human clips added to the spoken questions")
    parser.add_argument("--no_socket", action="store_true", help="skip the socket-mode row")
    parser.add_argument("--note", default="", help="a line about the conditions (e.g. other load)")
    parser.add_argument(
        "--baseline_tree",
        type=Path,
        help="another checkout (e.g. main, exported) whose realtime server runs the "
        "same rounds after this one's, labelled 'before'",
    )
    parser.add_argument("server_flags", nargs="*", help="extra flags for the servers (after --)")
    add_output_arguments(parser, RESULTS)
    args = parser.parse_args()
    load_before = os.getloadavg()
    samples = pick_samples(args.human)
    spoken = [sample for sample in samples if sample.path.parent.name == "questions"][: args.questions]
    samples = spoken + [sample for sample in samples if sample.path.parent.name != "questions"]
    questions = [Question(load_audio(sample.path), sample.reference) for sample in samples]
    counts = [int(n) for n in args.sessions.split(",") if n]
    long_counts = [int(n) for n in args.long_sessions.split(",") if n]
    long_requests = spoken_requests()[: args.long_requests] if long_counts else []
    rows: list[Round] = []

    def finished(row: Round) -> None:
        """Report after every round, so that a run cut short still leaves the rounds it finished."""
        rows.append(row)
        save_results(args, RESULTS, report(rows, len(questions), args.note, (load_before, os.getloadavg())))

    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_socket:
            server = ServerProcess("socket", Path(tmp), *args.server_flags, suffix="-socket")
            try:
                finished(socket_round(server, questions))
            finally:
                server.stop()
        most = str(max(counts + long_counts, default=1))
        trees = [(REPO, ""), *([(args.baseline_tree, "before: ")] if args.baseline_tree else [])]
        for tree, prefix in trees:
            server = ServerProcess(
                "realtime", Path(tmp), "--max_sessions", most, *args.server_flags, tree=tree, suffix=f"-rt{len(rows)}"
            )
            try:
                for count in counts:
                    label = f"{prefix}realtime, {count} session{'s' if count > 1 else ''}"
                    finished(realtime_round(server, count, questions, label))
                for count in long_counts:
                    label = f"{prefix}realtime, {count} session{'s' if count > 1 else ''}, four-sentence replies"
                    finished(realtime_round(server, count, long_requests, label))
            finally:
                server.stop()
    print(report(rows, len(questions), args.note, (load_before, os.getloadavg())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
