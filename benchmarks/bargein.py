"""Barge-in: how fast a reply falls silent when the user talks over it, and
whether the assistant's own echo ever interrupts it.

    python benchmarks/bargein.py                  # everything, writes benchmarks/RESULTS_bargein.md
    python benchmarks/bargein.py --rounds 4 --modes socket,realtime

Interruption onset -> reply silent, per mode.  Each round asks one of the
recorded questions (the LLM told to answer at length), lets the reply play
for 1.5-2.5 s, then plays a recorded human clip over it; the onset is the
clip's first voiced sample reaching the assistant, "silent" when the user's
speaker stops playing the interrupted reply:
- socket (`--barge_in True`, real TCP): the client's speaker plays what
  arrives in real time (the server paces at real time plus
  `--playback_lead_ms`), so it falls silent when the last byte of the
  interrupted reply has been played;
- realtime (the `openai` SDK client of connections/realtime/client.py): a
  Realtime API client stops its own playback at `input_audio_buffer.
  speech_started`, so that event's arrival is the silence; when the server
  cancelled the response (`response.done`) is shown too;
- local (a private PulseAudio whose speaker is looped into its mic, echo
  cancellation on): the onset is found in a tap of the mic's input, the
  silence in a tap of the speaker.
The goal is <= 300 ms after the false-interruption guard
(`--interrupt_min_speech_ms`, 200 ms), so both onset -> silent and that
minus the guard are reported.

False interruptions per minute of the assistant's own echo: whole replies
played back into the microphone path, nobody talking: through the PulseAudio
loopback in local mode, and through `listen_and_play.py --barge_in
--simulate_echo_db -6` (the headless client mixes the replies back into its
stream through a simulated room and cancels them) in socket mode; a control
run of the same client without cancellation shows what the echo does
unchecked.  Every interrupted turn, and every turn that is not one of the
questions asked, counts.

End of speech -> first audio, default turn settings: the first question of
each round (socket, local), as the server's metrics give it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from audio.pcm import load_audio  # noqa: E402
from benchmarks.harness import HUMAN, QUESTIONS  # noqa: E402
from benchmarks.server_process import ServerProcess  # noqa: E402

RATE = 16000
GUARD_MS = 200  # --interrupt_min_speech_ms default
LONG_ANSWERS = "You are a helpful assistant. Always answer in five sentences or more."
QUESTION_FILES = ["q04.wav", "q02.wav", "q05.wav", "q03.wav", "q06.wav", "q01.wav"]


@dataclass
class Round:
    mode: str
    clip: str
    onset_to_silent_ms: float | None
    server_interrupt_to_silence_ms: float | None = None
    onset_to_cancelled_ms: float | None = None
    note: str = ""


@dataclass
class EchoRun:
    label: str
    reply_s: float = 0.0  # reply audio played (recorded, or heard on the speaker)
    session_s: float = 0.0  # from each question to the end of its reply's echo
    false_interruptions: int = 0
    echo_turns: int = 0
    turns: list[dict] = field(default_factory=list)


def voiced_onset(samples: np.ndarray, threshold: int = 800) -> float:
    """Seconds into `samples` of the first clearly voiced 10 ms."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160).astype(np.float64)
    loud = np.nonzero(np.sqrt(np.mean(frames**2, axis=1)) > threshold)[0]
    return float(loud[0]) * 0.01 if loud.size else 0.0


def interruption_clips(count: int) -> list[tuple[str, np.ndarray]]:
    """Recorded human English prompts of 1.5-4 s, spread over the set."""
    with open(HUMAN / "transcripts.tsv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if r["file"].startswith("asterisk_en/")]
    clips = [(r["file"], load_audio(HUMAN / r["file"])) for r in rows]
    clips = [clip for clip in clips if 1.5 * RATE <= len(clip[1]) <= 4 * RATE]
    step = max(1, len(clips) // max(count, 1))
    return clips[::step][:count]


def percentile(values: list[float], share: float) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    return values[min(len(values) - 1, round(share * (len(values) - 1)))]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


# --- socket mode ----------------------------------------------------------------------------------
def socket_rounds(rounds: int, clips, work: Path) -> tuple[list[Round], list[dict]]:
    from benchmarks.socket_client import ReplyRecorder, stream

    server = ServerProcess("socket", work, "--barge_in", "True", "--init_chat_prompt", LONG_ANSWERS)
    results, first_turns = [], []
    try:
        for index in range(rounds):
            name, clip = clips[index % len(clips)]
            question = load_audio(QUESTIONS / QUESTION_FILES[index % len(QUESTION_FILES)])
            before = len(server.turns())
            replies = ReplyRecorder(server.send_port)
            with socket.create_connection(("127.0.0.1", server.recv_port)) as audio:
                stream(audio, np.concatenate([silence(0.3), question, silence(0.3)]))
                deadline = time.perf_counter() + 60
                while not replies.arrivals and time.perf_counter() < deadline:
                    stream(audio, silence(0.1))
                stream(audio, silence(1.5 + 0.5 * (index % 3)))  # the user listens a while
                began = time.perf_counter()
                stream(audio, clip)
                onset = began + voiced_onset(clip)
                server.wait_for_turns(before + 2, timeout=60)
                stream(audio, silence(0.5))
                while replies.arrivals and time.perf_counter() - replies.last_arrival() < 1.5:
                    stream(audio, silence(0.2))  # the answer to the clip plays out
            replies.close()
            turns = server.turns()[before:]
            silent = client_silent_at(replies.arrivals, onset)
            interrupted = turns[0] if turns else {}
            results.append(
                Round("socket", name, None if silent is None else (silent - onset) * 1000,
                      interrupted.get("interrupt_to_silence_ms"),
                      note="" if interrupted.get("interrupted") else "not interrupted")
            )  # fmt: skip
            if turns:
                first_turns.append(turns[0])
            time.sleep(0.5)
    finally:
        server.stop()
    return results, first_turns


def client_silent_at(arrivals: list[tuple[float, int]], onset: float) -> float | None:
    """When a client playing the arrivals in real time falls silent after
    `onset`: the end of the interrupted reply (the next reply comes after a
    gap of at least the user's turn)."""
    played_until = 0.0
    last = None
    for at, size in arrivals:
        if last is not None and at > onset and at - last > 0.4:
            break
        played_until = max(played_until, at) + size / 2 / RATE
        last = at
    return played_until if played_until > onset else None


# --- realtime mode ------------------------------------------------------------------------------------
def realtime_rounds(rounds: int, clips, work: Path) -> list[Round]:
    from benchmarks.harness import TEST_API_KEY as KEY
    from connections.realtime.client import connect, to_pcm24k

    server = ServerProcess("realtime", work, api_key=KEY)
    results = []
    try:
        for index in range(rounds):
            name, clip = clips[index % len(clips)]
            question = load_audio(QUESTIONS / QUESTION_FILES[index % len(QUESTION_FILES)])
            conversation = connect(server.port, KEY)
            try:
                conversation.wait_for("session.created", timeout=10)
                conversation.send({"type": "session.update", "session": {"type": "realtime",
                                                                          "instructions": LONG_ANSWERS}})  # fmt: skip
                conversation.wait_for("session.updated", timeout=10)
                conversation.speak(to_pcm24k(question, RATE), silence_s=0.3)
                first = conversation.wait_for("response.output_audio.delta", timeout=60)[0]
                quiet = bytes(480 * 2)
                while time.perf_counter() - first.at < 1.5 + 0.5 * (index % 3):
                    conversation.append(quiet)
                    time.sleep(0.02)
                mark = len(conversation.events)
                began = time.perf_counter()
                onset = began + voiced_onset(clip)
                conversation.speak(to_pcm24k(clip, RATE), silence_s=1.5)
                started = conversation.wait_for("input_audio_buffer.speech_started", timeout=10, after=mark)[0]
                done = conversation.wait_for("response.done", timeout=30, after=mark)[0]
                cancelled = done.event.response.status == "cancelled"
                results.append(
                    Round("realtime", name, (started.at - onset) * 1000,
                          onset_to_cancelled_ms=(done.at - onset) * 1000 if cancelled else None,
                          note="" if cancelled else f"response {done.event.response.status}")
                )  # fmt: skip
                with contextlib.suppress(TimeoutError):
                    conversation.wait_for("response.done", timeout=60, after=mark, count=2)
            finally:
                conversation.close()
    finally:
        server.stop()
    return results


# --- local mode ----------------------------------------------------------------------------------------
class MicTap:
    """What the pipeline's microphone hears (the mic feed's monitor), timestamped."""

    def __init__(self, env: dict, device: str) -> None:
        self.pieces: list[tuple[float, np.ndarray]] = []
        self.process = subprocess.Popen(
            ["parec", f"--device={device}", f"--rate={RATE}", "--channels=1", "--format=s16le", "--latency-msec=20"],
            env=env, stdout=subprocess.PIPE,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while data := self.process.stdout.read(640):
            self.pieces.append((time.perf_counter(), np.frombuffer(data, dtype="<i2")))

    def onset_of(self, clip: np.ndarray, since: float) -> float | None:
        """When the clip's first voiced sample passed the tap (by correlation)."""
        pieces = [(at, samples) for at, samples in list(self.pieces) if at >= since]
        if not pieces:
            return None
        heard = np.concatenate([samples for _, samples in pieces]).astype(np.float64)
        size = 1 << int(np.ceil(np.log2(len(heard) + len(clip))))
        correlation = np.fft.irfft(np.fft.rfft(heard, size) * np.conj(np.fft.rfft(clip.astype(np.float64), size)), size)
        start = int(np.argmax(correlation[: len(heard)]))
        position = start + int(voiced_onset(clip) * RATE)
        ends = np.cumsum([len(samples) for _, samples in pieces])
        index = int(np.searchsorted(ends, position, side="right"))
        if index >= len(pieces):
            return None
        arrived_at = pieces[index][0]
        return arrived_at - (ends[index] - position) / RATE  # the piece arrived when its last sample did

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def local_runs(
    rounds: int, echo_questions: int, clips, work: Path, extra: tuple[str, ...] = (), label: str = "local"
) -> tuple[list[Round], EchoRun, list[dict]]:
    """Local mode on a private PulseAudio with its speaker looped into its
    mic; `extra` flags for the pipeline (a variant, named `label`)."""
    from benchmarks.local_sound import (
        SpeakerTap,
        end_of_first_run,
        loop_speaker_into_mic,
        private_pulseaudio,
        start_local_pipeline,
        turns_of,
        wait_for,
    )

    results: list[Round] = []
    echo = EchoRun(f"{label} mode, PulseAudio loopback, AEC on")
    with private_pulseaudio(work) as env:
        loop_speaker_into_mic(env)
        speaker, mic = SpeakerTap(env), MicTap(env, "s2s_mic_feed.monitor")
        pipeline, metrics, log = start_local_pipeline(env, work, "--init_chat_prompt", LONG_ANSWERS, *extra)
        try:
            # Whole replies echoing back, nobody talking.
            for index in range(echo_questions):
                before = len(turns_of(metrics))
                path = QUESTIONS / QUESTION_FILES[index % len(QUESTION_FILES)]
                asked = time.perf_counter()
                subprocess.run(["paplay", "--device=s2s_mic_feed", str(path)], env=env, check=True)
                wait_for(lambda before=before: len(turns_of(metrics)) > before, 180)
                wait_for(lambda: not speaker.loud_times(time.perf_counter() - 2.0), 120)  # reply and echo over
                echo.reply_s += speaker.talking_since(asked)
                echo.session_s += time.perf_counter() - asked
                echo.turns.extend(turns_of(metrics)[before:])
            # Barge-in rounds.
            for index in range(rounds):
                name, clip = clips[index % len(clips)]
                before = len(turns_of(metrics))
                path = QUESTIONS / QUESTION_FILES[index % len(QUESTION_FILES)]
                asked = time.perf_counter()
                subprocess.run(["paplay", "--device=s2s_mic_feed", str(path)], env=env, check=True)
                listen = 1.5 + 0.5 * (index % 3)
                if not wait_for(lambda asked=asked, listen=listen: speaker.talking_since(asked + 2) >= listen, 90):
                    results.append(Round(label, name, None, note="no reply to interrupt"))
                    continue
                clip_file = work / "clip.wav"
                soundfile.write(clip_file, clip, RATE)
                began = time.perf_counter()
                subprocess.run(["paplay", "--device=s2s_mic_feed", str(clip_file)], env=env, check=True)
                wait_for(lambda before=before: len(turns_of(metrics)) >= before + 2, 90)
                onset = mic.onset_of(clip, began - 0.5)
                turns = turns_of(metrics)[before:]
                interrupted = turns[0] if turns else {}
                silent = end_of_first_run(speaker.loud_times(onset)) if onset else None
                results.append(
                    Round(label, name, (silent - onset) * 1000 if silent and onset else None,
                          interrupted.get("interrupt_to_silence_ms"),
                          note="" if interrupted.get("interrupted") else "not interrupted")
                )  # fmt: skip
                wait_for(lambda: not speaker.loud_times(time.perf_counter() - 1.5), 60)
        finally:
            pipeline.send_signal(2)
            pipeline.wait(timeout=30)
            speaker.close()
            mic.close()
        all_turns = turns_of(metrics)
        (work / "local_pipeline.log").write_text(log.read_text())
    score_echo(echo, len(echo.turns))
    return results, echo, all_turns


def score_echo(run: EchoRun, asked: int) -> None:
    run.false_interruptions = sum(1 for turn in run.turns if turn["interrupted"])
    run.echo_turns = max(0, len(run.turns) - asked)


# --- socket mode's echo, through listen_and_play.py --------------------------------------------------------
NO_CANCELLATION = """
import sys
sys.path.insert(0, {repo!r})
import audio.full_duplex as full_duplex
full_duplex.FullDuplexMic.process = lambda self, mic, played, now=None: mic  # the echo goes out as it is
import listen_and_play
sys.exit(listen_and_play.main(sys.argv[1:]))
"""


def socket_echo_runs(questions: int, control_questions: int, work: Path) -> list[EchoRun]:
    runs = []
    for label, count, cancel in (
        ("socket mode, listen_and_play.py --barge_in, simulated room (-6 dB, 120 ms)", questions, True),
        ("control: the same client without echo cancellation", control_questions, False),
    ):
        if not count:
            continue
        folder = work / ("echo" if cancel else "control")
        folder.mkdir()
        server = ServerProcess("socket", folder, "--barge_in", "True", "--init_chat_prompt", LONG_ANSWERS)
        run = EchoRun(label)
        try:
            for index in range(count):
                before = len(server.turns())
                recording, replies = folder / f"in{index}.wav", folder / f"out{index}.wav"
                question = load_audio(QUESTIONS / QUESTION_FILES[index % len(QUESTION_FILES)])
                soundfile.write(recording, np.concatenate([silence(0.3), question, silence(1.0)]), RATE)
                command = ["listen_and_play.py"] if cancel else ["-c", NO_CANCELLATION.format(repo=str(REPO))]
                began = time.perf_counter()
                subprocess.run(
                    [sys.executable, *command, "--send_port", str(server.recv_port),
                     "--recv_port", str(server.send_port), "--input_file", str(recording),
                     "--output_file", str(replies), "--barge_in", "--simulate_echo_db", "-6",
                     "--reply_idle_s", "3", "--timeout_s", "120"],
                    cwd=REPO, capture_output=True, text=True, timeout=180,
                )  # fmt: skip
                run.session_s += time.perf_counter() - began
                time.sleep(1.0)
                run.turns.extend(server.turns()[before:])
                if replies.exists():
                    run.reply_s += soundfile.info(str(replies)).duration
        finally:
            server.stop()
        score_echo(run, count)
        runs.append(run)
    return runs


# --- report ----------------------------------------------------------------------------------------------------
def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line), "?")
    except OSError:
        model = "?"
    cores = len([line for line in open("/proc/cpuinfo") if line.startswith("processor")])
    memory = round(int(open("/proc/meminfo").readline().split()[1]) / 1024 / 1024)
    software = f"Linux {platform.release()}, Python {platform.python_version()}"
    return f"{cores} CPU cores ({model}), {memory} GiB RAM, no GPU, no sound card; {software}"


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def p50_p90(values: list[float]) -> str:
    return f"{fmt(percentile(values, 0.5))} / {fmt(percentile(values, 0.9))}"


def report(rounds: list[Round], echoes: list[EchoRun], first_turns: dict[str, list[dict]], load: str) -> str:
    lines = [
        "# Barge-in benchmark",
        "",
        f"Machine: {machine()}.  ",
        f"Generated by `python benchmarks/bargein.py` on {time.strftime('%Y-%m-%d')}; "
        f"load average at the start: {load}. "
        "Other engineers ran tests on the same 2 cores at the same time: the figures are noisy, compare rows of this "
        "run only.",
        "",
        "## Interruption onset → reply silent",
        "",
        "Onset: the interrupting clip's first voiced sample reaching the assistant. Silent: the user's speaker stops "
        "playing the interrupted reply (socket: the client has played the last byte; realtime: the client stops at "
        "`speech_started`; local: the speaker tap falls silent). Goal: ≤ 300 ms after the 200 ms guard.",
        "",
        "| mode | rounds | interrupted | onset → silent p50 / p90 (ms) | minus the guard p50 / p90 (ms) "
        "| server: interrupt → silent p50 / p90 (ms) | realtime: onset → response cancelled p50 / p90 (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode in dict.fromkeys(r.mode for r in rounds):
        mine = [r for r in rounds if r.mode == mode]
        if not mine:
            continue
        spans = [r.onset_to_silent_ms for r in mine if r.onset_to_silent_ms is not None]
        guard = GUARD_MS if mode != "realtime" else 0
        after_guard = [span - guard for span in spans]
        server = [r.server_interrupt_to_silence_ms for r in mine if r.server_interrupt_to_silence_ms is not None]
        cancelled = [r.onset_to_cancelled_ms for r in mine if r.onset_to_cancelled_ms is not None]
        interrupted = sum(1 for r in mine if not r.note)
        lines.append(
            f"| {mode} | {len(mine)} | {interrupted} | {p50_p90(spans)} | {p50_p90(after_guard)} "
            f"| {p50_p90(server)} | {p50_p90(cancelled)} |"
        )
    per_round = [
        f"{r.mode} {Path(r.clip).stem} {fmt(r.onset_to_silent_ms)}" + (f" ({r.note})" if r.note else "") for r in rounds
    ]
    lines += ["", "Per round (ms): " + "; ".join(per_round), ""]
    lines += [
        "## False interruptions by the assistant's own echo",
        "",
        "| run | questions | session (min) | reply audio played (min) | interrupted turns | turns made of echo "
        "| false interruptions / min of reply audio |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in echoes:
        minutes = run.reply_s / 60
        asked = len(run.turns) - run.echo_turns
        rate = (run.false_interruptions + run.echo_turns) / minutes if minutes else None
        lines.append(
            f"| {run.label} | {asked} | {run.session_s / 60:.1f} | {minutes:.1f} | {run.false_interruptions} "
            f"| {run.echo_turns} "
            f"| {'–' if rate is None else f'{rate:.1f}'} |"
        )
    lines += ["", "## End of speech → first audio, default turn settings", "",
              "| mode | turns | p50 / p90 (ms) |", "|---|---|---|"]  # fmt: skip
    for mode, turns in first_turns.items():
        values = [t["speech_end_to_first_audio_ms"] for t in turns if t.get("speech_end_to_first_audio_ms") is not None]
        lines.append(f"| {mode} | {len(values)} | {fmt(percentile(values, 0.5))} / {fmt(percentile(values, 0.9))} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8, help="Barge-in rounds per mode.")
    parser.add_argument("--modes", default="socket,realtime,local")
    parser.add_argument("--echo_questions", type=int, default=5, help="Whole replies echoed back, per mode.")
    parser.add_argument("--control_questions", type=int, default=2, help="The same without cancellation.")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "RESULTS_bargein.md"))
    parser.add_argument("--keep_logs", help="Copy the servers' logs and metrics to this folder.")
    parser.add_argument("--local_variant", action="append", default=[], metavar='NAME="FLAGS"',
                        help="Run local mode again with these pipeline flags, e.g. "
                        'latency_100ms="--audio_latency_s 0.1" (repeatable).')  # fmt: skip
    args = parser.parse_args()
    modes = args.modes.split(",")
    clips = interruption_clips(args.rounds)
    load = open("/proc/loadavg").read().split()[0]
    rounds: list[Round] = []
    echoes: list[EchoRun] = []
    first_turns: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="s2s-bargein-") as folder:
        work = Path(folder)
        if "socket" in modes:
            (work / "socket").mkdir()
            found, first_turns["socket mode"] = socket_rounds(args.rounds, clips, work / "socket")
            rounds += found
            print(f"socket: {[fmt(r.onset_to_silent_ms) for r in found]}", flush=True)
            echoes += socket_echo_runs(args.echo_questions, args.control_questions, work)
        if "realtime" in modes:
            (work / "realtime").mkdir()
            found = realtime_rounds(args.rounds, clips, work / "realtime")
            rounds += found
            print(f"realtime: {[fmt(r.onset_to_silent_ms) for r in found]}", flush=True)
        if "local" in modes:
            # The default first, then each variant: one run of local mode each.
            runs = [("local", "local", "")] + [
                (name, f"local {name}", flags)
                for name, _, flags in (variant.partition("=") for variant in args.local_variant)
            ]
            local_echoes = []
            for folder, label, flags in runs:
                (work / folder).mkdir()
                found, echo, turns = local_runs(
                    args.rounds, args.echo_questions, clips, work / folder, tuple(shlex.split(flags)), label
                )
                rounds += found
                local_echoes.append(echo)
                first_turns[f"{label} mode"] = [t for t in turns if not t["interrupted"]][: args.echo_questions]
                print(f"{label}: {[fmt(r.onset_to_silent_ms) for r in found]}", flush=True)
            echoes[:0] = local_echoes  # local rows first, in the order they ran
        text = report(rounds, echoes, first_turns, load)
        (work / "rounds.json").write_text(json.dumps([r.__dict__ for r in rounds], indent=1))
        if args.keep_logs:
            shutil.copytree(work, args.keep_logs, dirs_exist_ok=True)
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
