"""Sounds over the reply: which ones stop it, how fast, and how long a resumed reply stays silent.

    python benchmarks/interruptions.py --write                   # socket, realtime, local
    python benchmarks/interruptions.py --modes socket --variant seed="--resume_false_interruption False"

The interruption set (tests/data/interruptions/, benchmarks/interruption_set.py)
is played over the assistant's replies, in the three modes where the user can
talk over it: socket mode with `--barge_in True` (a client on real TCP that
keeps sending its microphone), realtime (the `openai` SDK client of
connections/realtime/client.py) and local mode (a private PulseAudio whose
speaker is looped into its microphone, echo cancellation on).  The assistant
is told to answer at length; over each reply go a few of the set's
backchannels and noises, 1.2 to 3 s apart and at different moments of the
reply, then one of its true interruptions; its answer (if it has one) is the
next reply to talk over, else the next question is asked.

Per sound, from the server's log and what the client hears:
- stopped: the reply stopped (the VAD's verdict, or in realtime mode the
  `input_audio_buffer.speech_started` that makes every client stop playing);
- onset -> silent (true interruptions): from the sound's first voiced sample
  to the client's speaker falling silent (socket: the last byte of the reply
  played; realtime: `speech_started` arrived; local: the speaker tap);
- the longest silence in the reply while a backchannel or noise was judged
  (socket and local: the client's playback; realtime clients never pause);
- own response: a backchannel or noise that became a turn of its own.
Goals (issue 23): false stops per backchannel or noise <= 5%, true
interruptions stopped >= 98% with onset -> silent p50 unchanged, resumed
replies silent no longer than `--false_interruption_timeout_ms`.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import csv
import itertools
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_interruptions.md"
SET = REPO / "tests" / "data" / "interruptions"
sys.path.insert(0, str(REPO))

from audio.pcm import load_audio  # noqa: E402
from benchmarks.bargein import client_silent_at, voiced_onset  # noqa: E402
from benchmarks.harness import QUESTIONS  # noqa: E402
from benchmarks.latency import add_output_arguments, machine_description, percentile, save_results  # noqa: E402
from benchmarks.server_process import ServerProcess  # noqa: E402

RATE = 16000
LONG_ANSWERS = "You are a helpful assistant. Always answer at length, in eight sentences or more."
QUESTION_FILES = ["q04.wav", "q02.wav", "q05.wav", "q03.wav", "q06.wav", "q01.wav"]
TIMEOUT_MS = 1500  # --false_interruption_timeout_ms default
# No reply audio for this long before a sound is played: the reply ended before the round's
# sounds did (the 1.5B answers some questions in two sentences), and a new question is asked
# first, so that every sound is heard over a reply.  Before, half of local mode's sounds fell
# after the reply's end, unjudged.
REPLY_OVER_S = 1.5
STOPPING = ("interruption_short", "interruption_long")
# The VAD's verdicts on a sound over the reply, each with its reason (to the end of its log line).
VERDICT = re.compile(
    r"turn \d+: the sound over the reply (?:was|is an interruption)[^\n]*|turn \d+ interrupted by the user[^\n]*"
)


@dataclass
class Clip:
    name: str
    kind: str
    text: str
    audio: np.ndarray

    @property
    def should_stop(self) -> bool:
        return self.kind in STOPPING


@dataclass
class Outcome:
    mode: str
    clip: Clip
    stopped: bool | None  # None: the reply was over before the sound (not counted)
    onset_to_silent_ms: float | None = None
    longest_silence_ms: float | None = None
    own_response: bool = False
    note: str = ""
    reply_longest_pause_ms: float | None = None  # the server's own record, for the reply the sound was over
    verdicts: int = 0  # the VAD's verdicts logged while this sound was judged


# Verdicts on sounds nobody made (the assistant's own echo, in local mode), per run label.
UNPROMPTED: dict[str, int] = {}


def count_unprompted(label: str, log: Path, outcomes: list[Outcome]) -> None:
    UNPROMPTED[label] = len(verdicts_since(log, 0)) - sum(o.verdicts for o in outcomes)


def load_set() -> list[Clip]:
    with open(SET / "manifest.tsv", newline="") as handle:
        return [
            Clip(row["file"], row["kind"], row["text"], load_audio(SET / row["file"]))
            for row in csv.DictReader(handle, delimiter="\t")
        ]


def rounds_of(clips: list[Clip], per_round: int = 3) -> list[tuple[list[Clip], Clip]]:
    """(backchannels and noises, then one true interruption) per reply, spread over the set."""
    calm = [clip for clip in clips if not clip.should_stop]
    stopping = [clip for clip in clips if clip.should_stop]
    rounds = []
    for index, interruption in enumerate(stopping):
        rounds.append((calm[index * per_round : (index + 1) * per_round], interruption))
    leftover = calm[len(stopping) * per_round :]
    for index in range(0, len(leftover), per_round):  # more calm sounds than rounds: they end with the first stop
        rounds.append((leftover[index : index + per_round], stopping[index // per_round % len(stopping)]))
    return rounds


class Microphone:
    """Sends a microphone stream at real-time pace, silence between what it is given to say."""

    def __init__(self, send, frame: int) -> None:
        self.send_frame, self.frame = send, frame
        # (key, frame): a said piece's first frame carries its key, the others None.
        self.queue: collections.deque[tuple[int | None, np.ndarray]] = collections.deque()
        self.started: dict[int, float] = {}  # key of a said piece -> when its first frame went out
        self._keys = itertools.count()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def say(self, audio: np.ndarray) -> float:
        """Queue `audio`; returns when its first sample was sent (blocks until then).

        Pieces are told apart by a key of their own, not by their frames' `id()`:
        a frame sent and freed leaves its id to a later array, so a later piece
        read the start time of one sent a minute earlier (onsets 38-75 s off)."""
        frames = [audio[i : i + self.frame] for i in range(0, len(audio), self.frame)]
        frames[-1] = np.pad(frames[-1], (0, self.frame - len(frames[-1])))
        key = next(self._keys)
        self.queue.extend([(key, frames[0]), *((None, frame) for frame in frames[1:])])
        while key not in self.started:
            time.sleep(0.005)
        return self.started.pop(key)

    def busy(self) -> bool:
        return bool(self.queue)

    def _run(self) -> None:
        silence = np.zeros(self.frame, np.int16)
        began, sent = time.perf_counter(), 0
        while not self.stop.is_set():
            key, frame = self.queue.popleft() if self.queue else (None, silence)
            if key is not None:
                self.started[key] = time.perf_counter()
            self.send_frame(frame)
            sent += 1
            delay = began + sent * self.frame / RATE - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)


def verdicts_since(log: Path, offset: int) -> list[str]:
    text = log.read_text(errors="replace")[offset:]
    return [match.group(0) for match in VERDICT.finditer(text)]


def stopped_by(lines: list[str]) -> bool | None:
    """True: a verdict stopped the reply; False: it resumed; None: nothing was judged (no pause at all)."""
    if not lines:
        return None
    return any("is an interruption" in line or "interrupted by the user" in line for line in lines)


def reasons(lines: list[str]) -> str:
    """What the verdicts said, for the table: "words: 'wait'", "backchannel: 'Mm-hmm.'"."""
    found = [re.sub(r"^turn \d+:? (the sound over the reply )?", "", line) for line in lines]
    return "; ".join(text.replace("|", "/") for text in found)


def playback(arrivals: list[tuple[float, int]], rate: int = RATE) -> list[tuple[float, float]]:
    """When a client playing the arrivals (bytes of 16-bit PCM at `rate`) in real time
    plays sound: (start, end) spans."""
    spans: list[tuple[float, float]] = []
    for at, size in arrivals:
        start = max(at, spans[-1][1] if spans else at)
        end = start + size / 2 / rate
        if spans and start - spans[-1][1] < 0.005:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def longest_silence(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Longest stretch within [start, end] with no span playing, but only between spans (not after the last)."""
    inside = [(a, b) for a, b in spans if b > start and a < end]
    gaps = [later[0] - earlier[1] for earlier, later in itertools.pairwise(inside)]
    return max(gaps, default=0.0)


# --- socket mode -------------------------------------------------------------------------------------
def socket_run(rounds, work: Path, flags: tuple[str, ...], label: str) -> list[Outcome]:
    from benchmarks.socket_client import ReplyRecorder

    server = ServerProcess("socket", work, "--barge_in", "True", "--init_chat_prompt", LONG_ANSWERS, *flags)
    outcomes: list[Outcome] = []
    replies = ReplyRecorder(server.send_port)
    conn = socket.create_connection(("127.0.0.1", server.recv_port))
    mic = Microphone(lambda frame: conn.sendall(frame.astype("<i2").tobytes()), 512)
    try:
        questions = Questions(mic.say, lambda: reply_playing(replies))
        for calm, interruption in rounds:
            before = len(server.turns())
            if not questions.reply_playing(8):  # the answer to the last interruption, if any
                continue
            for index, clip in enumerate([*calm, interruption]):
                time.sleep(1.2 + 0.6 * (index % 3))  # different moments of the reply
                if not questions.reply_playing(REPLY_OVER_S, settle_s=1.2):
                    break
                offset = len(server.log.read_text(errors="replace"))
                playing = client_playing(replies)
                began = mic.say(clip.audio)
                onset = began + voiced_onset(clip.audio)
                time.sleep(len(clip.audio) / RATE + TIMEOUT_MS / 1000 + 0.6)
                lines = verdicts_since(server.log, offset)
                # A sound the server judged was over the reply: in a gap of its audio (the
                # server writing its next sentence) the client plays nothing, but the reply
                # is not over, and the server judges it so.
                playing = playing or bool(lines)
                outcome = Outcome(label, clip, (stopped_by(lines) or False) if playing else None, verdicts=len(lines))
                outcome.note = reasons(lines)
                if clip.should_stop:
                    silent = client_silent_at(replies.arrivals, onset)
                    outcome.onset_to_silent_ms = None if silent is None else (silent - onset) * 1000
                else:
                    outcome.longest_silence_ms = longest_silence(playback(replies.arrivals), onset, onset + 3) * 1000
                outcomes.append(outcome)
                if outcome.stopped:
                    break
            server.wait_for_turns(before + 1, timeout=60)
            own_responses(outcomes[-(len(calm) + 1) :], server.turns()[before:])
            pauses(outcomes[-(len(calm) + 1) :], server.turns()[before:])
    finally:
        mic.close()
        conn.close()
        replies.close()
        server.stop()
    count_unprompted(label, server.log, outcomes)
    return outcomes


def reply_playing(replies) -> bool:
    """Reply audio arrived within the last 0.5 s (a paced reply arrives every 20 ms)."""
    return bool(replies.arrivals) and time.perf_counter() - replies.last_arrival() < 0.5


def client_playing(replies) -> bool:
    """A client playing the reply audio as it arrives would be playing it now.  The
    0.5 s arrival rule said so for up to 0.35 s after the reply's last sound (the
    server paces its audio 150 ms ahead), when the server rightly judged nothing:
    five true interruptions went without a verdict so."""
    spans = playback(replies.arrivals)
    return bool(spans) and time.perf_counter() < spans[-1][1]


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


class Questions:
    """The set's questions, asked in turn whenever there is no reply to talk over."""

    def __init__(self, say: Callable[[np.ndarray], object], playing: Callable[[], bool]) -> None:
        self.say, self.playing, self.asked = say, playing, 0

    def reply_playing(self, wait_s: float, settle_s: float = 0.0) -> bool:
        """Whether a reply plays: the one going on, if its audio comes within
        `wait_s`, else the next question's answer (up to 90 s), `settle_s`
        into it."""
        if wait_until(self.playing, wait_s):
            return True
        self.say(load_audio(QUESTIONS / QUESTION_FILES[self.asked % len(QUESTION_FILES)]))
        self.asked += 1
        if not wait_until(self.playing, 90):
            return False
        time.sleep(settle_s)
        return True


def own_responses(outcomes: list[Outcome], turns: list[dict]) -> None:
    """Backchannels and noises of a round that became turns of their own: a
    turn whose words are only a backchannel or none (the round's questions
    and interruptions are real words)."""
    from VAD.overlap import Heard, classify

    own = sum(classify(turn["transcript"]) is not Heard.WORDS for turn in turns)
    for outcome in [o for o in outcomes if not o.clip.should_stop and not o.stopped][:own]:
        outcome.own_response = True


def pauses(outcomes: list[Outcome], turns: list[dict]) -> None:
    """The longest pause the server itself recorded in the round's reply."""
    paused = [turn["longest_pause_ms"] for turn in turns if turn.get("backchannels")]
    for outcome in outcomes:
        if not outcome.clip.should_stop and paused:
            outcome.reply_longest_pause_ms = max(paused)


# --- realtime mode --------------------------------------------------------------------------------------
def realtime_run(rounds, work: Path, flags: tuple[str, ...], label: str) -> list[Outcome]:
    from benchmarks.harness import TEST_API_KEY as KEY
    from connections.realtime.client import connect, to_pcm24k

    server = ServerProcess("realtime", work, *flags, api_key=KEY)
    outcomes: list[Outcome] = []
    try:
        conversation = connect(server.port, KEY)
        conversation.wait_for("session.created", timeout=10)
        conversation.send({"type": "session.update", "session": {"type": "realtime", "instructions": LONG_ANSWERS}})
        conversation.wait_for("session.updated", timeout=10)
        # The client's microphone: 24 kHz PCM in 20 ms appends (480 samples).
        mic = Microphone(lambda frame: conversation.append(to_pcm24k(frame, RATE)), 320)
        try:
            questions = Questions(mic.say, lambda: realtime_playing(conversation))
            for calm, interruption in rounds:
                mark = len(conversation.events)
                if not questions.reply_playing(8):  # the answer to the last interruption, if any
                    continue
                for index, clip in enumerate([*calm, interruption]):
                    time.sleep(1.2 + 0.6 * (index % 3))
                    if not questions.reply_playing(REPLY_OVER_S, settle_s=1.2):
                        break
                    events_before = len(conversation.events)
                    playing = realtime_playing(conversation)
                    began = mic.say(clip.audio)
                    onset = began + voiced_onset(clip.audio)
                    time.sleep(len(clip.audio) / RATE + TIMEOUT_MS / 1000 + 0.6)
                    started = conversation.of("input_audio_buffer.speech_started", events_before)
                    outcome = Outcome(label, clip, bool(started) if playing else None)
                    spans = playback(realtime_arrivals(conversation, mark), REALTIME_RATE)
                    if clip.should_stop and started:
                        arrived = next(r.at for r in conversation.events[events_before:]
                                       if r.event.type == "input_audio_buffer.speech_started")  # fmt: skip
                        # The client stops at speech_started, or earlier when the reply's audio,
                        # paced (--realtime_playback_lead_ms), stopped coming while the sound was judged.
                        outcome.onset_to_silent_ms = (min(arrived, ran_dry_at(spans, onset)) - onset) * 1000
                    elif not clip.should_stop:
                        outcome.longest_silence_ms = longest_silence(spans, onset, onset + 3) * 1000
                    outcomes.append(outcome)
                    if outcome.stopped:
                        break
                with contextlib.suppress(TimeoutError):
                    conversation.wait_for("response.done", timeout=60, after=mark)
                transcripts = [e.transcript for e in conversation.of(
                    "conversation.item.input_audio_transcription.completed", mark)]  # fmt: skip
                own_responses(outcomes[-(len(calm) + 1) :], [{"transcript": text} for text in transcripts])
        finally:
            mic.close()
            conversation.close()
    finally:
        server.stop()
    return outcomes


REALTIME_RATE = 24000  # the realtime API's PCM


def realtime_arrivals(conversation, after: int = 0) -> list[tuple[float, int]]:
    """The reply audio deltas since event `after`: (arrival time, bytes of 16-bit PCM)."""
    return [(r.at, len(base64.b64decode(r.event.delta))) for r in conversation.events[after:]
            if r.event.type == "response.output_audio.delta"]  # fmt: skip


def ran_dry_at(spans: list[tuple[float, float]], moment: float) -> float:
    """When a client playing `spans` has nothing left to play from `moment` on
    (`moment` itself when it was not playing then)."""
    return next((end for start, end in spans if start <= moment < end), moment)


def realtime_playing(conversation) -> bool:
    """The latest response is still coming (no `response.done` yet: a gap
    while the server writes its next sentence is part of the reply), or a
    client playing its audio as it arrives would still be playing it."""
    deltas = [r for r in conversation.events if r.event.type == "response.output_audio.delta"]
    if not deltas:
        return False
    latest = deltas[-1].event.response_id
    mine = [r for r in deltas if r.event.response_id == latest]
    if any(r.event.type == "input_audio_buffer.speech_started" and r.at > mine[0].at for r in conversation.events):
        return False  # the client stopped it
    if not any(r.event.type == "response.done" and r.event.response.id == latest for r in conversation.events):
        return True
    spans = playback([(r.at, len(base64.b64decode(r.event.delta))) for r in mine], rate=24000)
    return time.perf_counter() < spans[-1][1] - 1.0


# --- local mode ---------------------------------------------------------------------------------------------
def local_run(rounds, work: Path, flags: tuple[str, ...], label: str) -> list[Outcome]:
    from benchmarks.bargein import MicTap
    from benchmarks.local_sound import (
        SpeakerTap,
        end_of_first_run,
        loop_speaker_into_mic,
        private_pulseaudio,
        start_local_pipeline,
        turns_of,
    )

    outcomes: list[Outcome] = []
    with private_pulseaudio(work) as env:
        loop_speaker_into_mic(env)
        speaker, mic = SpeakerTap(env), MicTap(env, "s2s_mic_feed.monitor")
        pipeline, metrics, log = start_local_pipeline(env, work, "--init_chat_prompt", LONG_ANSWERS, *flags)

        def play(audio: np.ndarray) -> float:
            path = work / "say.wav"
            soundfile.write(path, audio, RATE)
            began = time.perf_counter()
            subprocess.run(["paplay", "--device=s2s_mic_feed", str(path)], env=env, check=True)
            return began

        def talking() -> bool:
            return bool(speaker.loud_times(time.perf_counter() - 0.5))

        try:
            questions = Questions(play, talking)
            for calm, interruption in rounds:
                before = len(turns_of(metrics))
                if not questions.reply_playing(8):  # the answer to the last interruption, if any
                    continue
                for index, clip in enumerate([*calm, interruption]):
                    time.sleep(1.2 + 0.6 * (index % 3))
                    if not questions.reply_playing(REPLY_OVER_S, settle_s=1.2):
                        break
                    offset = len(log.read_text(errors="replace"))
                    began = play(clip.audio)
                    time.sleep(TIMEOUT_MS / 1000 + 0.6)
                    onset = mic.onset_of(clip.audio.astype(np.float64), began - 0.5) or began
                    lines = verdicts_since(log, offset)
                    # Over the reply: it sounded as the sound began, or the server judged the
                    # sound (in a gap of the reply's audio).  "Loud within the last 0.5 s before
                    # the clip" had counted sounds after the reply's end: five true
                    # interruptions without a verdict, silent 2.6-4.4 s later (the next reply's end).
                    sounding = [at for at in speaker.loud_times(onset - 0.15) if at < onset + 0.15]
                    playing = bool(sounding) or bool(lines)
                    outcome = Outcome(
                        label, clip, (stopped_by(lines) or False) if playing else None, verdicts=len(lines)
                    )
                    outcome.note = reasons(lines)
                    if clip.should_stop:
                        loud = speaker.loud_times(onset)
                        if loud:  # none: the speaker was silent from the onset on (the reply had ended)
                            outcome.onset_to_silent_ms = (end_of_first_run(loud) - onset) * 1000
                        else:
                            outcome.note += " (speaker silent from the onset on)"
                    else:
                        loud = speaker.loud_times(onset)
                        loud = [at for at in loud if at < onset + 3]
                        outcome.longest_silence_ms = max(
                            (b - a for a, b in itertools.pairwise(loud)), default=0.0
                        ) * 1000  # fmt: skip
                    outcomes.append(outcome)
                    if outcome.stopped:
                        break
                wait_until(lambda before=before: len(turns_of(metrics)) > before, 60)
                own_responses(outcomes[-(len(calm) + 1) :], turns_of(metrics)[before:])
                pauses(outcomes[-(len(calm) + 1) :], turns_of(metrics)[before:])
        finally:
            pipeline.send_signal(2)
            pipeline.wait(timeout=30)
            speaker.close()
            mic.close()
        count_unprompted(label, log, outcomes)
    return outcomes


# --- report ------------------------------------------------------------------------------------------------
def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def report(outcomes: list[Outcome], load: str, command: str) -> str:
    lines = [
        "# Sounds over the reply: backchannels, noises and real interruptions",
        "",
        f"Machine: {machine_description()}.  ",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d')}; load average at the start: {load}.",
        "",
        "| mode | backchannels: stopped | noises: stopped | false stops | longest silence of a resumed reply "
        "p50 / max ms (client) | longest pause max ms (server) | own responses | true interruptions: stopped "
        "| onset → silent p50 / p90 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in dict.fromkeys(o.mode for o in outcomes):
        mine = [o for o in outcomes if o.mode == mode and o.stopped is not None]
        bc = [o for o in mine if o.clip.kind == "backchannel"]
        noise = [o for o in mine if o.clip.kind == "noise"]
        calm = bc + noise
        true = [o for o in mine if o.clip.should_stop]
        silences = [o.longest_silence_ms for o in calm if not o.stopped and o.longest_silence_ms is not None]
        spans = [o.onset_to_silent_ms for o in true if o.stopped and o.onset_to_silent_ms is not None]
        false_stops = sum(o.stopped for o in calm)
        server_pauses = [o.reply_longest_pause_ms for o in calm if o.reply_longest_pause_ms is not None]
        lines.append(
            f"| {mode} | {sum(o.stopped for o in bc)} of {len(bc)} | {sum(o.stopped for o in noise)} of {len(noise)} "
            f"| {100 * false_stops / max(1, len(calm)):.0f}% | {fmt(percentile(silences, 50))} / "
            f"{fmt(max(silences, default=None))} | {fmt(max(server_pauses, default=None))} "
            f"| {sum(o.own_response for o in calm)} "
            f"| {sum(o.stopped for o in true)} of {len(true)} | {fmt(percentile(spans, 50))} / "
            f"{fmt(percentile(spans, 90))} |"
        )
    if UNPROMPTED:
        counts = ", ".join(f"{label} {count}" for label, count in UNPROMPTED.items())
        lines += ["", f"Verdicts on sounds the benchmark did not make (the assistant's own echo): {counts}."]
    lines += ["", "## Every sound", "", "| mode | sound | kind | what it says | stopped | onset → silent ms "
              "| longest silence ms | own response | verdict (server log) |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for o in outcomes:
        stopped = "–" if o.stopped is None else ("yes" if o.stopped else "no")
        lines.append(
            f"| {o.mode} | {o.clip.name} | {o.clip.kind} | {o.clip.text} | {stopped} | {fmt(o.onset_to_silent_ms)} "
            f"| {fmt(o.longest_silence_ms)} | {'yes' if o.own_response else ''} | {o.note} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_output_arguments(parser, RESULTS)
    parser.add_argument("--modes", default="socket,realtime,local")
    parser.add_argument("--limit", type=int, default=0, help="only the first N rounds per mode")
    parser.add_argument("--variant", action="append", default=[], metavar='NAME="FLAGS"',
                        help='run each mode again with these pipeline flags, e.g. seed="--resume_false_interruption '
                        'False" (repeatable)')  # fmt: skip
    parser.add_argument("--variants_only", action="store_true", help="run the --variant runs only, not the default")
    parser.add_argument("--keep_logs", type=Path, default=None, metavar="DIR",
                        help="work in DIR and keep it (each run's server or pipeline log and metrics), to see why "
                        "a sound was judged as it was; by default a temporary folder, removed")  # fmt: skip
    args = parser.parse_args()
    load = open("/proc/loadavg").read().split()[0]
    rounds = rounds_of(load_set())[: args.limit or None]
    runs = {"socket": socket_run, "realtime": realtime_run, "local": local_run}
    variants = [] if args.variants_only else [("", ())]
    variants += [(name, tuple(shlex.split(flags))) for name, _, flags in (v.partition("=") for v in args.variant)]
    outcomes: list[Outcome] = []
    with contextlib.ExitStack() as stack:
        if args.keep_logs is not None:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            folder = str(args.keep_logs)
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="s2s-interruptions-"))
        for mode in args.modes.split(","):
            for name, flags in variants:
                label = f"{mode} {name}".strip()
                work = Path(folder) / label.replace(" ", "_")
                if work.exists():  # a kept folder reused: the pipeline appends to its metrics, start afresh
                    shutil.rmtree(work)
                work.mkdir()
                found = runs[mode](rounds, work, flags, label)
                outcomes += found
                print(label, [(o.clip.name, o.stopped, fmt(o.onset_to_silent_ms)) for o in found], flush=True)
    command = "python benchmarks/interruptions.py " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    text = report(outcomes, load, command.strip())
    print(text)
    save_results(args, RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
