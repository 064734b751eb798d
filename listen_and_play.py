"""Thin client for `s2s_pipeline.py --mode socket`: stream a microphone, play the replies.

    python listen_and_play.py --host 127.0.0.1
    python listen_and_play.py --input_file q.wav --output_file reply.wav   # headless

Wire format (see README): raw int16 mono PCM both ways, no header.  The mic is
not sent while a reply is playing, so the assistant does not hear itself.

With `--barge_in` (for a server started with `--barge_in True`) the mic stays
open while replies play and the client cancels its own echo (WebRTC AEC3, see
audio/full_duplex.py), so the user can interrupt the assistant.  Headless,
`--barge_in` streams the file without pausing for replies, and
`--simulate_echo_db` plays the replies back into it as a speaker next to the
mic would (then cancels them): echo cancellation tested without a sound card.

Headless mode streams the file at real-time pace (then silence, so the server
sees the end of the turn), records what comes back, and exits once the reply
has finished: no reply audio for `--reply_idle_s` after the last of it played.
"""

from __future__ import annotations

import argparse
import logging
import queue
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from audio.echo_cancel import EchoCancellerUnavailable
from audio.echo_path import SimulatedEchoPath
from audio.full_duplex import FullDuplexMic
from audio.played_audio import PlayedAudio
from utils.signals import listen_for_ctrl_c

logger = logging.getLogger("listen_and_play")

BYTES_PER_SAMPLE = 2


@dataclass
class ClientOptions:
    host: str = "127.0.0.1"
    send_port: int = 12345
    recv_port: int = 12346
    send_rate: int = 16000
    recv_rate: int = 16000
    chunk_size: int = 1024
    list_play_chunk_size: int = 512  # frames, as the server's local mode counts them
    input_file: str | None = None
    output_file: str | None = None
    reply_idle_s: float = 2.0
    timeout_s: float = 120.0
    connect_attempts: int = 8
    barge_in: bool = False
    aec_engine: str = "auto"
    simulate_echo_db: float | None = None


def connect_with_retry(host: str, port: int, attempts: int, what: str) -> socket.socket:
    """Connect, retrying with exponential back-off; a clear message, no traceback."""
    delay = 0.25
    for attempt in range(1, attempts + 1):
        try:
            return socket.create_connection((host, port), timeout=5)
        except OSError as error:
            if attempt == attempts:
                raise ConnectionError(f"cannot reach the s2s server's {what} port at {host}:{port}: {error}") from None
            logger.warning("%s port %s:%d not reachable (%s); retrying in %.1f s", what, host, port, error, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


class ReplyReceiver(threading.Thread):
    """Reads reply audio; tracks until when it will be playing, for muting."""

    def __init__(self, conn: socket.socket, rate: int) -> None:
        super().__init__(name="ReplyReceiver", daemon=True)
        self.conn = conn
        self.rate = rate
        self.chunks: queue.Queue[bytes] = queue.Queue()
        self.recorded = bytearray()
        self.play_until = 0.0  # perf_counter time the received audio finishes playing
        self.last_data_at = 0.0
        self.closed = threading.Event()
        self._odd = b""

    def run(self) -> None:
        self.conn.settimeout(0.2)
        while not self.closed.is_set():
            try:
                data = self.conn.recv(8192)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            data, self._odd = self._align(self._odd + data)
            now = time.perf_counter()
            self.last_data_at = now
            self.play_until = max(self.play_until, now) + len(data) / BYTES_PER_SAMPLE / self.rate
            self.recorded.extend(data)
            self.chunks.put(data)
        self.closed.set()

    @staticmethod
    def _align(data: bytes) -> tuple[bytes, bytes]:
        cut = len(data) - len(data) % BYTES_PER_SAMPLE
        return data[:cut], data[cut:]

    @property
    def playing(self) -> bool:
        return time.perf_counter() < self.play_until


class SimulatedRoom:
    """Headless `--simulate_echo_db`: the replies, played at real time by an
    imaginary speaker, come back into the streamed file through a room
    (audio/echo_path.py), and the client cancels them as it would live."""

    def __init__(self, options: ClientOptions, replies: ReplyReceiver) -> None:
        self.rate = options.send_rate
        self.replies = replies
        # The simulated room's echo delay is fixed: nothing moves it while the speaker is silent.
        self.duplex = full_duplex_mic(options, path_may_move=False)
        self.path = SimulatedEchoPath(self.rate, delay_ms=120, gain_db=options.simulate_echo_db)
        self.speaker = PlayedAudio(options.recv_rate, options.send_rate)
        self._received = bytearray()
        self._calibrate()

    def _calibrate(self, seconds: float = 2.5, block: int = 512) -> None:
        """A calibration sound played into the room before the conversation
        (as a device may chirp at start-up), then silence while it dies away:
        the canceller learns the room from it.  Without it the mic is muted
        while the canceller learns from the first reply's first two seconds
        of voice, and a reply whose first sentence was short ("Certainly!")
        followed by a slow machine's pause swallowed the user's question
        asked over its second sentence.  Nothing of it reaches the server."""
        noise = (np.random.default_rng(0).standard_normal(int(seconds * self.rate)) * 3000).astype(np.int16)
        sound = np.concatenate([noise, np.zeros(self.rate // 2, np.int16)])
        began = time.perf_counter() - 60.0  # long over by the time the conversation starts
        for offset in range(0, len(sound), block):
            played = sound[offset : offset + block]
            self.duplex.process(self.path.mix(np.zeros_like(played), played), played, now=began + offset / self.rate)

    def _played(self, frames: int) -> np.ndarray:
        """What the speaker plays during the next `frames` (received audio, in order, at real time)."""
        while True:
            try:
                self._received.extend(self.replies.chunks.get_nowait())
            except queue.Empty:
                break
        if self._received:
            self.speaker.push(np.frombuffer(bytes(self._received), dtype="<i2"))
            self._received.clear()
        return self.speaker.take(frames)

    def hear(self, chunk: bytes) -> bytes:
        """The file's chunk as the mic hears it in the room, echo cancelled."""
        mic = np.frombuffer(chunk, dtype="<i2")
        played = self._played(mic.size)
        cleaned = self.duplex.process(self.path.mix(mic, played), played)
        return cleaned.astype("<i2").tobytes()


def run_headless(options: ClientOptions) -> int:

    from audio.pcm import AudioInputError, AudioOutputError, load_audio, write_wav

    try:
        samples = load_audio(options.input_file, target_rate=options.send_rate)
    except AudioInputError as error:
        print(f"listen_and_play: error: {error}", file=sys.stderr)
        return 1
    try:
        send = connect_with_retry(options.host, options.send_port, options.connect_attempts, "audio")
        recv = connect_with_retry(options.host, options.recv_port, options.connect_attempts, "reply")
    except ConnectionError as error:
        print(f"listen_and_play: error: {error}", file=sys.stderr)
        return 1
    replies = ReplyReceiver(recv, options.recv_rate)
    replies.start()
    try:
        room = SimulatedRoom(options, replies) if options.barge_in and options.simulate_echo_db is not None else None
    except EchoCancellerUnavailable as error:
        print(f"listen_and_play: error: {error}", file=sys.stderr)
        return 1
    payload = samples.astype("<i2").tobytes()
    chunk_s = options.chunk_size / BYTES_PER_SAMPLE / options.send_rate
    silence = bytes(options.chunk_size)
    position, began = 0, time.perf_counter()
    next_tick = began
    interrupted = False
    try:
        while time.perf_counter() - began < options.timeout_s:
            if replies.closed.is_set():
                print("listen_and_play: the server closed the reply connection", file=sys.stderr)
                break
            file_done = position >= len(payload)
            reply_over = (
                replies.recorded
                and not replies.playing
                and time.perf_counter() - replies.play_until > options.reply_idle_s
            )
            if file_done and reply_over:
                break
            if options.barge_in or not replies.playing:  # half duplex: the mic is muted while a reply plays
                if file_done:
                    chunk = silence
                else:
                    chunk = payload[position : position + options.chunk_size].ljust(options.chunk_size, b"\0")
                    position += options.chunk_size
                send.sendall(chunk if room is None else room.hear(chunk))
            next_tick += chunk_s
            time.sleep(max(0.0, next_tick - time.perf_counter()))
    except OSError as error:
        print(f"listen_and_play: connection lost: {error}", file=sys.stderr)
    except KeyboardInterrupt:  # Ctrl-C: keep what was recorded so far
        interrupted = True
    finally:
        send.close()
        replies.closed.set()
        recv.close()
    audio = np.frombuffer(bytes(replies.recorded), dtype="<i2")
    if room is not None:
        logger.info("simulated room: %s", room.duplex.stats)
    received = f"received {audio.size / options.recv_rate:.1f} s of reply audio"
    if options.output_file and audio.size:
        try:
            write_wav(options.output_file, audio, options.recv_rate)
            received += f", written to {options.output_file}"
        except AudioOutputError as error:  # checked before the conversation; the disk may still fill
            received += f"; {error}"
    elif options.output_file:
        received += f"; {options.output_file} not written"
    if interrupted:
        print(f"listen_and_play: interrupted; {received}", file=sys.stderr)
        return 130
    print(received)
    return 0 if audio.size else 1


NO_SOUND_CARD_HINT = (
    "without a sound card, talk to the server from a file: "
    "python listen_and_play.py --input_file question.wav --output_file reply.wav"
)


def sound_card_problem(sd) -> str | None:
    """Why live mode cannot open a microphone and a speaker here (None: it can)."""
    try:
        sd.query_devices(kind="input")
        sd.query_devices(kind="output")
    except (sd.PortAudioError, ValueError) as error:
        return f"no sound card found ({error})"
    return None


def run_live(options: ClientOptions, sd=None) -> int:
    if sd is None:
        try:
            import sounddevice as sd
        except OSError as error:  # PortAudio library missing
            print(f"listen_and_play: no audio system: {error}; {NO_SOUND_CARD_HINT}", file=sys.stderr)
            return 1
    problem = sound_card_problem(sd)  # before connecting: the server cannot fix this
    if problem:
        print(f"listen_and_play: error: {problem}; {NO_SOUND_CARD_HINT}", file=sys.stderr)
        return 1
    if options.barge_in:
        try:
            full_duplex_mic(options)
        except EchoCancellerUnavailable as error:
            print(f"listen_and_play: error: --barge_in needs echo cancellation: {error}", file=sys.stderr)
            return 1
    while True:
        try:
            send = connect_with_retry(options.host, options.send_port, options.connect_attempts, "audio")
            recv = connect_with_retry(options.host, options.recv_port, options.connect_attempts, "reply")
        except ConnectionError as error:
            print(f"listen_and_play: error: {error}", file=sys.stderr)
            return 1
        try:
            status = _live_session(sd, options, send, recv)
        finally:
            send.close()
            recv.close()
        if status is not None:
            return status
        logger.warning("connection to the server lost; reconnecting")


def full_duplex_mic(options: ClientOptions, path_may_move: bool = True) -> FullDuplexMic:
    return FullDuplexMic(options.send_rate, options.aec_engine, path_may_move=path_may_move)


def _live_session(sd, options: ClientOptions, send: socket.socket, recv: socket.socket) -> int | None:
    """Stream the mic and play replies until Ctrl-C (0), an audio error (1),
    or a lost connection (None: the caller reconnects)."""
    replies = ReplyReceiver(recv, options.recv_rate)
    replies.start()
    pending = bytearray()
    lost = threading.Event()
    duplex = full_duplex_mic(options) if options.barge_in else None
    played = PlayedAudio(options.recv_rate, options.send_rate) if duplex is not None else None

    def on_mic(indata, frames, time_info, status) -> None:
        if (replies.playing and duplex is None) or lost.is_set():
            return
        data = bytes(indata)
        if duplex is not None:
            if status.input_overflow:
                duplex.hiccup()
            mic = np.frombuffer(data, dtype="<i2")
            data = duplex.process(mic, played.take(mic.size)).astype("<i2").tobytes()
        try:
            send.sendall(data)
        except OSError:
            lost.set()

    def on_play(outdata, frames, time_info, status) -> None:
        while len(pending) < len(outdata):
            try:
                pending.extend(replies.chunks.get_nowait())
            except queue.Empty:
                break
        size = min(len(pending), len(outdata))
        outdata[:size] = pending[:size]
        outdata[size:] = b"\0" * (len(outdata) - size)
        del pending[:size]
        if played is not None:  # the echo canceller's reference
            if status.output_underflow:
                duplex.hiccup()
            played.push(np.frombuffer(bytes(outdata), dtype="<i2"))

    mic_block = options.chunk_size // BYTES_PER_SAMPLE
    play_block = options.list_play_chunk_size  # frames (mono int16: one sample each)
    try:
        with sd.RawInputStream(samplerate=options.send_rate, channels=1, dtype="int16",
                               blocksize=mic_block, callback=on_mic), \
             sd.RawOutputStream(samplerate=options.recv_rate, channels=1, dtype="int16",
                                blocksize=play_block, callback=on_play):  # fmt: skip
            print("listening; Ctrl-C to quit")
            while not (lost.is_set() or replies.closed.is_set()):
                time.sleep(0.1)
    except KeyboardInterrupt:
        return 0
    except sd.PortAudioError as error:
        print(f"listen_and_play: audio device error: {error}; {NO_SOUND_CARD_HINT}", file=sys.stderr)
        return 1
    finally:
        replies.closed.set()
    return None


def parse_args(argv: list[str] | None = None) -> ClientOptions:
    defaults = ClientOptions()

    class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        """The module's docstring as written, and each flag's default."""

    class OneLineErrors(argparse.ArgumentParser):
        """A wrong flag or value is one line, as the server's are, not the whole usage."""

        def error(self, message: str) -> NoReturn:
            self.exit(2, f"listen_and_play: error: {message} (--help lists the flags)\n")

    parser = OneLineErrors(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--host", default=defaults.host, help="Server address.")
    parser.add_argument(
        "--send_port",
        type=int,
        default=defaults.send_port,
        help="The server's port that takes the mic (its --recv_port).",
    )
    parser.add_argument(
        "--recv_port",
        type=int,
        default=defaults.recv_port,
        help="The server's port that sends the replies (its --send_port).",
    )
    parser.add_argument("--send_rate", type=int, default=defaults.send_rate, help="Mic sample rate (server: 16000).")
    parser.add_argument("--recv_rate", type=int, default=defaults.recv_rate, help="Reply sample rate.")
    parser.add_argument("--chunk_size", type=int, default=defaults.chunk_size, help="Bytes per mic chunk.")
    parser.add_argument("--list_play_chunk_size", type=int, default=defaults.list_play_chunk_size,
                        help="Frames (samples, not bytes) per playback block, as in the server's local mode: "
                             "512 = 32 ms at 16 kHz.")  # fmt: skip
    parser.add_argument("--input_file", help="Headless: stream this audio file instead of the mic.")
    parser.add_argument("--output_file", help="Headless: write the reply audio here (WAV).")
    parser.add_argument("--reply_idle_s", type=float, default=defaults.reply_idle_s,
                        help="Headless: the reply is over after this long without new audio.")  # fmt: skip
    parser.add_argument("--timeout_s", type=float, default=defaults.timeout_s, help="Headless: give up after this.")
    parser.add_argument("--connect_attempts", type=int, default=defaults.connect_attempts,
                        help="Connection attempts (exponential back-off) before giving up.")  # fmt: skip
    parser.add_argument("--barge_in", action="store_true",
                        help="Keep the mic open while replies play and cancel their echo, so the user can "
                             "interrupt (server: --barge_in True).")  # fmt: skip
    parser.add_argument("--aec_engine", default=defaults.aec_engine, choices=["auto", "webrtc", "speex"],
                        help="Echo canceller for --barge_in.")  # fmt: skip
    parser.add_argument("--simulate_echo_db", type=float, default=None,
                        help="Headless --barge_in: play the replies back into the file this many dB below "
                             "their level, 120 ms late, through a simulated room, and cancel them.")  # fmt: skip
    args = parser.parse_args(argv)
    if args.simulate_echo_db is not None and not (args.barge_in and args.input_file):
        parser.error("--simulate_echo_db goes with --barge_in and --input_file (headless)")
    if args.output_file:
        from audio.pcm import AudioOutputError, check_output_file

        try:  # now, not after the whole conversation (an .mp3 name failed with a traceback at the end)
            check_output_file(args.output_file)
        except AudioOutputError as error:
            parser.error(f"--output_file: {error}")
    return ClientOptions(**vars(args))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    listen_for_ctrl_c()  # also when a shell started it in the background
    options = parse_args(argv)
    try:
        if options.input_file:
            return run_headless(options)
        return run_live(options)
    except KeyboardInterrupt:  # Ctrl-C while connecting
        print("listen_and_play: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
