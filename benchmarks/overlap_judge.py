"""The judge of sounds over the reply alone: the real VAD and STT on the whole interruption set.

    python benchmarks/overlap_judge.py --write

Each sound of the interruption set (tests/data/interruptions/) is heard over a
reply that is playing, by the real VAD (Silero) and the real STT
(faster-whisper, `whisper-base`), as it would be live: the audio comes in as a
realtime client sends it (24 kHz PCM, decoded by the server's `InputAudio`),
and each transcription's answer reaches the judge only after as much more audio
as the STT took to compute it (measured here, one transcription at a time), so
the judge waits on the STT as it does on a server.  No LLM, TTS or sockets:
`benchmarks/interruptions.py` measures the whole conversation in every mode;
this measures the decision on every file in a minute and a half.

With `--echo`, as local mode hears it: the reply's own voice (Piper, the
assistant's) comes back into the microphone through a simulated room (200 ms,
a room's reflections), is cancelled by the full-duplex mic (WebRTC AEC3
behind the delay line, audio/full_duplex.py) that has learned the room on the
reply's first seconds, and each block carries the echo-leak measure local
mode gives the VAD; the reply, and so its echo, stops while the sound is
judged and after an interruption.  What the canceller leaves of the echo, and
what it does to the user's words, is what local mode's verdicts differ by.

Per sound: whether it stopped the reply, onset -> verdict (from its first
voiced sample to the judge's decision: in realtime mode the moment
`input_audio_buffer.speech_started` goes out for a true interruption), and
what each transcription said.  Goals (issue 23): false stops per backchannel
or noise <= 5%, true interruptions stopped >= 98%.
"""

from __future__ import annotations

import argparse
import csv
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_overlap_judge.md"
RESULTS_ECHO = REPO / "benchmarks" / "RESULTS_overlap_judge_echo.md"  # --write with --echo
SET = REPO / "tests" / "data" / "interruptions"
sys.path.insert(0, str(REPO))

from audio.pcm import load_audio  # noqa: E402
from benchmarks.bargein import voiced_onset  # noqa: E402
from benchmarks.latency import add_output_arguments, fmt, machine_description, percentile, save_results  # noqa: E402

RATE = 16000
STOPPING = ("interruption_short", "interruption_long")


@dataclass
class Judged:
    name: str
    kind: str
    text: str
    stopped: bool
    onset_to_verdict_ms: float | None  # None: no verdict (too quiet for the VAD: the reply never paused)
    heard: list[str]

    @property
    def should_stop(self) -> bool:
        return self.kind in STOPPING

    @property
    def right(self) -> bool:
        return self.stopped == self.should_stop


class Judge:
    """The VAD and STT handlers, and one sound heard over a playing reply."""

    def __init__(self, stt_model: str, echo: bool = False) -> None:
        from benchmarks.harness import make_handler
        from STT.faster_whisper_handler import FasterWhisperSTTHandler

        self.stt = make_handler(FasterWhisperSTTHandler, model_name=stt_model, language="en")
        self.reply = assistant_voice() if echo else None

    def hear(self, sound: np.ndarray) -> tuple[bool, float | None, list[str]]:
        return self.hear_through_echo(sound) if self.reply is not None else self.hear_clean(sound)

    def hear_clean(self, sound: np.ndarray) -> tuple[bool, float | None, list[str]]:
        """`sound` over the reply as a realtime client sends it: 24 kHz PCM in 20 ms appends."""
        from connections.realtime.audio import InputAudio
        from connections.realtime.client import to_pcm24k

        # The clock is the audio's: a long timeout, so only the words decide.
        hearing = Hearing(self.stt, "A reply of eleven seconds.", RATE * 11)
        lead = RATE // 2
        audio = np.concatenate([np.zeros(lead, np.int16), sound, np.zeros(RATE * 2, np.int16)])
        pcm, microphone = to_pcm24k(audio, RATE), InputAudio("audio/pcm", RATE)
        for start in range(0, len(pcm), 960):  # 20 ms appends
            chunk = microphone.decode(pcm[start : start + 960])
            hearing.advance(len(chunk))
            hearing.feed(chunk)
        return hearing.outcome(lead + int(voiced_onset(sound) * RATE))

    def hear_through_echo(self, sound: np.ndarray) -> tuple[bool, float | None, list[str]]:
        """`sound` over the reply as local mode hears it (the module's docstring)."""
        from audio.echo_path import SimulatedEchoPath
        from audio.full_duplex import FullDuplexMic

        assert self.reply is not None
        hearing = Hearing(self.stt, "A long reply.", len(self.reply))
        turn = hearing.turn
        room = SimulatedEchoPath(RATE, delay_ms=200)
        duplex = FullDuplexMic(RATE, path_may_move=False)
        lead = RATE * 5  # the canceller learns the room (its first 2 s are muted), then the sound
        user = np.concatenate([np.zeros(lead, np.int16), sound, np.zeros(RATE * 2, np.int16)])
        played_at, block = 0, 512
        for start in range(0, len(user), block):
            mic_block = user[start : start + block]
            if turn.stale or turn.playback.paused() or played_at + len(mic_block) > len(self.reply):
                played = np.zeros(len(mic_block), np.int16)  # paused, stopped or over: no more echo
            else:
                played, played_at = self.reply[played_at : played_at + len(mic_block)], played_at + len(mic_block)
            cleaned = duplex.process(room.mix(mic_block, played), played, now=start / RATE)
            hearing.advance(len(mic_block))
            if cleaned.size:  # else held back by the full-duplex mic
                hearing.feed(cleaned, duplex.echo_leak if cleaned.size == len(mic_block) else None)
        return hearing.outcome(lead + int(voiced_onset(sound) * RATE))


class Hearing:
    """One sound heard over a playing reply, on the audio's own clock: the
    VAD's session with a reply playing, and each transcription answered once
    as much audio has gone by as the STT took to compute it, as on a server."""

    def __init__(self, stt: object, reply_text: str, reply_samples: int) -> None:
        from benchmarks.harness import make_handler
        from conversation.session import Session, SessionSettings
        from conversation.turn import Turn
        from VAD.vad_handler import VADHandler

        self.stt = stt
        self.session = Session(SessionSettings(barge_in=True, false_interruption_timeout_ms=60000))
        self.vad = make_handler(
            VADHandler, should_listen=threading.Event(), session=self.session, hears_overlaps=True
        )
        self.turn = Turn(session=self.session)
        self.session.active_turn = self.turn
        self.turn.begin_playback()
        self.turn.playback.add(reply_text, reply_samples, RATE, when=time.perf_counter() - 1.0)
        self.position, self.verdict_at = 0, None
        self.heard: list[str] = []
        self.waiting: list[tuple[int, object, object]] = []  # (due position, the VAD's request, the answer)

    def advance(self, samples: int) -> None:
        """`samples` more of the stream went by: answer the transcriptions due by now."""
        self.position += samples
        for due in [due for due in self.waiting if due[0] <= self.position]:
            self.waiting.remove(due)
            due[1].answer(due[2].text, due[2].likely_speech)

    def feed(self, samples: np.ndarray, echo_leak: float | None = None) -> None:
        from utils.messages import AudioChunk, Overheard, OverheardSpeech

        for message in self.vad.process(AudioChunk(samples=samples, session=self.session, echo_leak=echo_leak)):
            if isinstance(message, OverheardSpeech):
                asked, message.heard = message.heard, Overheard()
                began = time.perf_counter()
                list(self.stt.process(message))
                took = int((time.perf_counter() - began) * RATE)
                self.waiting.append((self.position + took, asked, message.heard))
                text = message.heard.text
                self.heard.append(text if message.heard.likely_speech else f"({text})")
        if self.verdict_at is None and (self.turn.stale or self.turn.backchannels):
            self.verdict_at = self.position

    def outcome(self, onset: int) -> tuple[bool, float | None, list[str]]:
        """Whether the reply stopped, onset -> verdict in ms, and what was heard."""
        ms = None if self.verdict_at is None else (self.verdict_at - onset) * 1000 / RATE
        return self.turn.stale, ms, self.heard


def assistant_voice() -> np.ndarray:
    """Some twenty seconds of the assistant's voice at 16 kHz, the same every run."""
    from benchmarks.harness import assistant_speech

    return assistant_speech(
        "A good book for a long train ride is The Great Gatsby by F. Scott Fitzgerald. It is short, and it "
        "reads quickly. If you like mysteries, try Agatha Christie's Murder on the Orient Express, which is set "
        "on a train. For something longer, a fantasy series such as The Lord of the Rings will last for many "
        "journeys. You could also bring a book of short stories, so that each ride ends with a story.",
        RATE,
    )


def judge_set(stt_model: str, echo: bool = False) -> list[Judged]:
    judge = Judge(stt_model, echo)
    with open(SET / "manifest.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    results = []
    for row in rows:
        stopped, ms, heard = judge.hear(load_audio(SET / row["file"]))
        results.append(Judged(row["file"], row["kind"], row["text"], stopped, ms, heard))
        print(f"{row['file']:28s} {'stop' if stopped else 'goes on':8s} {ms or 0:6.0f} ms {heard}", flush=True)
    return results


def report(results: list[Judged], command: str, load: str, echo: bool = False) -> str:
    backchannels = [r for r in results if r.kind == "backchannel"]
    noises = [r for r in results if r.kind == "noise"]
    calm = backchannels + noises
    true = [r for r in results if r.should_stop]
    spans = [r.onset_to_verdict_ms for r in true if r.stopped and r.onset_to_verdict_ms is not None]
    resumed = [r.onset_to_verdict_ms for r in calm if not r.stopped and r.onset_to_verdict_ms is not None]
    lines = [
        "# The overlap judge alone: the whole interruption set"
        + (", over the reply's own echo through the canceller (local mode)" if echo else ""),
        "",
        f"Machine: {machine_description()}.  ",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d')}; load average at the start: {load}.",
        "",
        "| backchannels stopped | noises stopped | false stops | true interruptions stopped "
        "| onset → verdict p50 / p90 ms (true) | onset → resumed p50 / p90 ms (calm) |",
        "|---|---|---|---|---|---|",
        f"| {sum(r.stopped for r in backchannels)} of {len(backchannels)} | {sum(r.stopped for r in noises)} of "
        f"{len(noises)} | {100 * sum(r.stopped for r in calm) / max(1, len(calm)):.1f}% | "
        f"{sum(r.stopped for r in true)} of {len(true)} | {fmt(percentile(spans, 50))} / {fmt(percentile(spans, 90))} "
        f"| {fmt(percentile(resumed, 50))} / {fmt(percentile(resumed, 90))} |",
        "",
        "## Every sound",
        "",
        "| sound | kind | what it says | verdict | onset → verdict ms | transcriptions, in order |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        verdict = ("stop" if r.stopped else "goes on") + ("" if r.right else " ✗")
        lines.append(
            f"| {r.name} | {r.kind} | {r.text} | {verdict} | {fmt(r.onset_to_verdict_ms)} | "
            f"{' → '.join(r.heard) or '(none: too quiet to pause)'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_output_arguments(parser, RESULTS)  # RESULTS_ECHO with --echo
    parser.add_argument("--stt_model", default="whisper-base")
    parser.add_argument("--echo", action="store_true",
                        help="hear each sound as local mode does: over the reply's own echo, cancelled")  # fmt: skip
    args = parser.parse_args()
    load = open("/proc/loadavg").read().split()[0]
    results = judge_set(args.stt_model, args.echo)
    command = "python benchmarks/overlap_judge.py " + " ".join(sys.argv[1:])
    text = report(results, command.strip(), load, args.echo)
    print(text)
    save_results(args, RESULTS_ECHO if args.echo else RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
