"""Local mode: this machine's microphone in, its speakers out, through one
full-duplex `sounddevice` stream.

The stream runs at 16 kHz when the device accepts it, else at the device's
own rate with soxr resampling both ways (the microphone through one streaming
resampler for the whole stream, so block boundaries do not click).  Replies are played from a buffer in
`--list_play_chunk_size` frame blocks.

With echo cancellation (`--aec`, on by default) the microphone stays open
while the assistant speaks: each mic block is cleaned of the block played at
the same time (audio/echo_cancel.py) and goes to the VAD, stamped with the
local session, whose barge-in lets the user interrupt.  Without it (`--aec
False`) the microphone is ignored while a reply plays and for the output
latency after it (half duplex, as in the seed), so the assistant does not
answer its own voice.

The stream is driven in blocking mode from our own thread (read one block,
write one block) rather than with a PortAudio callback: through ALSA's
PulseAudio plugin a full-duplex callback stream busy-polls a whole core and
delivers well under real time (measured: 34 callbacks of 78 in 5 s), while
blocking reads of the same stream keep up at a few percent of a core.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from audio.echo_cancel import EchoCancellerUnavailable
from audio.full_duplex import FullDuplexMic
from audio.pcm import PIPELINE_SAMPLE_RATE, resample
from audio.stream_resample import StreamResampler
from connections.audio_sink import AudioSink
from connections.playback_buffer import PlaybackBuffer
from connections.server_tools import ServerTools
from conversation.session import Session
from conversation.turn import Turn
from utils.messages import AudioChunk, EndOfResponse, EndOfStream, LLMSentence, TTSAudio

logger = logging.getLogger(__name__)


class AudioDeviceError(RuntimeError):
    """No usable audio device; the message lists the devices found."""


def import_sounddevice():
    try:
        import sounddevice
    except OSError as error:  # the PortAudio shared library is missing
        raise AudioDeviceError(
            f"{error}: install PortAudio (Debian/Ubuntu: apt-get install libportaudio2; macOS: brew install portaudio)"
        ) from None
    return sounddevice


def describe_devices(sd) -> str:
    devices = sd.query_devices()
    if len(devices) == 0:
        return "no audio devices found"
    lines = []
    for index, device in enumerate(devices):
        kinds = []
        if device["max_input_channels"]:
            kinds.append(f"{device['max_input_channels']} in")
        if device["max_output_channels"]:
            kinds.append(f"{device['max_output_channels']} out")
        lines.append(f"  [{index}] {device['name']} ({', '.join(kinds)}, {device['default_samplerate']:.0f} Hz)")
    return "audio devices:\n" + "\n".join(lines)


def resolve_device(sd, wanted: str | None, kind: str) -> int | None:
    """A device index from an index or a case-insensitive name fragment; None: the default."""
    if wanted in (None, ""):
        return None
    channels_key = "max_input_channels" if kind == "input" else "max_output_channels"
    devices = sd.query_devices()
    if wanted.isdigit():
        index = int(wanted)
        if index < len(devices) and devices[index][channels_key] > 0:
            return index
    else:
        for index, device in enumerate(devices):
            if wanted.lower() in device["name"].lower() and device[channels_key] > 0:
                return index
    raise AudioDeviceError(f"no {kind} device matches {wanted!r}; {describe_devices(sd)}")


class LocalAudioStreamer:
    """Thread body that owns the full-duplex stream; its mic chunks feed the VAD."""

    name = "LocalAudioStreamer"

    def __init__(
        self,
        stop_event: threading.Event,
        queue_out: Any,
        should_listen: threading.Event,
        playback: PlaybackBuffer,
        input_device: str | None = None,
        output_device: str | None = None,
        list_play_chunk_size: int = 512,
        latency_s: float = 0.1,
        echo_cancellation: str | None = None,
        session: Session | None = None,
    ) -> None:
        """`echo_cancellation`: None (half duplex) or an engine of
        audio/echo_cancel.py ("auto", "webrtc", "speex"); `session`: the
        conversation the mic audio belongs to."""
        self.sd = import_sounddevice()
        self.latency_s = latency_s
        self.stop_event = stop_event
        self.queue_out = queue_out
        self.should_listen = should_listen
        self.playback = playback
        self.blocksize = list_play_chunk_size
        if len(self.sd.query_devices()) == 0:
            raise AudioDeviceError(describe_devices(self.sd))
        self.device = (resolve_device(self.sd, input_device, "input"), resolve_device(self.sd, output_device, "output"))
        self.rate = self._pick_rate()
        self.playback.sample_rate = self.rate
        self.session = session
        self.duplex = self._full_duplex_mic(echo_cancellation)
        self._backlog: deque[int] = deque(maxlen=max(2, int(0.5 * self.rate / self.blocksize)))
        self.playing = False
        self.underruns = 0  # speaker deadlines missed, for the log at the end
        self.output_capacity = 0
        self.started = threading.Event()

    def _full_duplex_mic(self, engine: str | None) -> FullDuplexMic | None:
        """The echo-cancelled mic at the device's rate; half duplex when no canceller is installed."""
        if engine is None:
            return None
        try:
            return FullDuplexMic(self.rate, engine)
        except EchoCancellerUnavailable as error:
            logger.warning("%s; the microphone is muted while the assistant speaks", error)
            return None

    @property
    def full_duplex(self) -> bool:
        """The mic stays open during replies (its echo is cancelled)."""
        return self.duplex is not None

    def _pick_rate(self) -> int:
        """16 kHz if the devices take it, else the input device's own rate."""
        try:
            self.sd.check_input_settings(
                device=self.device[0], channels=1, dtype="int16", samplerate=PIPELINE_SAMPLE_RATE
            )
            self.sd.check_output_settings(
                device=self.device[1], channels=1, dtype="int16", samplerate=PIPELINE_SAMPLE_RATE
            )
            return PIPELINE_SAMPLE_RATE
        except Exception as error:
            try:
                info = self.sd.query_devices(self.device[0], "input")
            except Exception:
                raise AudioDeviceError(f"no usable input device ({error}); {describe_devices(self.sd)}") from None
            rate = int(info["default_samplerate"])
            logger.info("device does not take 16 kHz (%s); using %d Hz with resampling", error, rate)
            return rate

    def open_stream(self):
        try:
            return self.sd.Stream(
                samplerate=self.rate,
                blocksize=self.blocksize,
                device=self.device,
                channels=1,
                dtype="int16",
                latency=self.latency_s,
            )
        except Exception as error:
            raise AudioDeviceError(f"cannot open the audio device: {error}; {describe_devices(self.sd)}") from None

    def run(self) -> None:
        try:
            with self.open_stream() as stream:
                self.playback.output_latency_s = float(stream.latency[1])
                self.started.set()
                logger.info("listening on the microphone (Ctrl-C to stop)")
                muted_until = 0.0
                # One resampler for the stream's life (None at 16 kHz): resampling
                # block by block would put a click at every block boundary.
                resampler = (
                    StreamResampler(self.rate, PIPELINE_SAMPLE_RATE, input_dtype="int16")
                    if self.rate != PIPELINE_SAMPLE_RATE
                    else None
                )
                self.output_capacity = int(stream.write_available)  # the speaker's buffer, empty now
                headroom = self._initial_headroom()
                while not self.stop_event.is_set():
                    mic, overflowed = stream.read(self.blocksize)
                    if overflowed:
                        logger.debug("microphone overflow: audio was lost")
                    reply = self.playback.read(self.blocksize)
                    underflowed = stream.write(reply.reshape(-1, 1))
                    if underflowed:
                        self.underruns += 1
                        headroom = self._more_headroom(headroom)
                    topped_up = self._top_up_output(stream, headroom)
                    now = time.perf_counter()
                    if reply.any():
                        # Still audible until what is queued ahead of it has played, and the
                        # device's latency after that.
                        queued_s = max(0, self.output_capacity - stream.write_available) / self.rate
                        muted_until = now + queued_s + self.latency_s
                    self.playing = now < muted_until or self.playback.pending > 0
                    samples = self._hear(stream, mic[:, 0], reply, overflowed or underflowed or topped_up)
                    # The echo measure is of this block's moment: held audio released, or a
                    # backlog caught up, gets none.
                    leak = self.duplex.echo_leak if self.duplex is not None and samples.size == len(mic) else None
                    # Resampled even while muted, so the filter never sees a gap.
                    if resampler is not None and samples.size:
                        samples = resampler.push(samples)
                    if (self.playing and not self.full_duplex) or not self.should_listen.is_set():
                        continue  # half duplex: the mic is ignored while the assistant speaks
                    if not samples.size:
                        continue  # held back by the full-duplex mic
                    self.queue_out.put(
                        AudioChunk(
                            samples=samples, sample_rate=PIPELINE_SAMPLE_RATE, session=self.session, echo_leak=leak
                        )
                    )
        except self.sd.PortAudioError as error:
            # Raised on: the ThreadManager stops the pipeline and reports it.
            raise AudioDeviceError(f"audio device failed: {error}") from None
        finally:
            self.started.set()
            self.queue_out.put(EndOfStream())
            stats = f"; full-duplex mic: {self.duplex.stats}" if self.duplex is not None else ""
            logger.info("audio stream closed: %d speaker underruns%s", self.underruns, stats)

    def _initial_headroom(self) -> int:
        """How many frames the speaker's buffer should hold after each write,
        to begin with: two blocks.

        The loop writes one block per mic block read, so the speaker's buffer
        keeps whatever level it started at, and it starts nearly empty.  The
        mic's audio comes in bursts (through PulseAudio: 80 ms), so a loop
        paced by the mic leaves the speaker dry between bursts: measured
        through ALSA's pulse plugin, 4-5 underruns a second with an idle
        CPU.  Each one clicks in the user's ear and moves the echo by the
        length of the gap, which keeps the echo canceller from settling.
        Each underrun that still happens (a busy machine) raises the
        headroom by a block: a little more latency rather than clicks."""
        return min(2 * self.blocksize, self.output_capacity)

    def _more_headroom(self, headroom: int) -> int:
        raised = min(headroom + self.blocksize, max(self.output_capacity - self.blocksize, headroom))
        if raised != headroom:
            logger.debug("speaker underrun: keeping %d ms in its buffer from now on", raised * 1000 // self.rate)
        return raised

    def _top_up_output(self, stream: Any, headroom: int) -> bool:
        """Silence written ahead until the speaker holds `headroom` frames;
        True when any was (the echo then comes that much later)."""
        written = 0
        # Bounded by the buffer's size, in case a device's count never moves.
        while (
            written < self.output_capacity
            and self.output_capacity - stream.write_available < headroom
            and stream.write_available >= self.blocksize
        ):
            stream.write(np.zeros((self.blocksize, 1), dtype=np.int16))
            written += self.blocksize
        if written:
            logger.debug("speaker buffer topped up with %d ms of silence", written * 1000 // self.rate)
        return written > 0

    def _hear(self, stream: Any, mic: np.ndarray, played: np.ndarray, audio_lost: bool) -> np.ndarray:
        """What the mic heard while `played` went out: the block itself in
        half duplex; with echo cancellation, the block without the echo (runs
        on every block, even while nobody listens, so the canceller keeps its
        echo path) and any mic audio that had piled up."""
        if self.duplex is None:
            return mic.copy()
        if audio_lost:
            self.duplex.hiccup()  # an underrun or overflow: the echo path may have moved
        return np.concatenate([self.duplex.process(mic, played), self._drain_backlog(stream)])

    def _drain_backlog(self, stream: Any) -> np.ndarray:
        """Mic audio that piled up in the device while the loop was late.

        After a stall longer than the speaker's buffer the loop catches up on
        the speaker side only: from then on every mic block is read that much
        later (measured under load: more than a second within a minute), so
        the VAD hears the user late and the echo drifts beyond the
        canceller's reach.  A backlog that persists for half a second is read
        at once (it was recorded while the speaker ran dry)."""
        self._backlog.append(stream.read_available)
        if len(self._backlog) < self._backlog.maxlen or min(self._backlog) <= 2 * self.blocksize:
            return np.zeros(0, dtype=np.int16)
        surplus = min(self._backlog) - self.blocksize
        self._backlog.clear()
        extra, _ = stream.read(surplus)
        logger.debug("read %d ms of mic audio that had piled up", surplus * 1000 // self.rate)
        return self.duplex.catch_up(extra[:, 0])


class LocalAudioSink(AudioSink):
    """Queues replies for playback and hands the turn back once they have played."""

    def setup(
        self,
        should_listen: threading.Event,
        playback: PlaybackBuffer,
        streamer: LocalAudioStreamer,
        metrics_file: str | Path | None = None,
        tools: ServerTools | None = None,
    ) -> None:
        self.setup_sink(should_listen, metrics_file, tools=tools)
        self.playback = playback
        self.streamer = streamer

    def output(self, audio: TTSAudio) -> None:
        samples = audio.samples
        if audio.sample_rate != self.streamer.rate:
            samples = resample(samples, audio.sample_rate, self.streamer.rate)
        self.playback.push(samples, audio.turn)

    def process(self, message: TTSAudio | LLMSentence | EndOfResponse):
        if isinstance(message, EndOfResponse) and message.turn.stale:
            self.playback.drop_stale()  # an interrupted reply falls silent now, not after its audio
        yield from super().process(message)

    def finish_turn(self, turn: Turn) -> None:
        while self.playback.pending and not self.stop_event.is_set():
            if turn.stale:
                self.playback.drop_stale()
                return
            time.sleep(0.02)

    def cleanup(self) -> None:
        self.playback.clear()
