"""Local mode: this machine's microphone in, its speakers out, through one
full-duplex `sounddevice` stream.

The stream runs at 16 kHz when the device accepts it, else at the device's
own rate with soxr resampling both ways; the microphone goes through one
streaming resampler for the whole stream, so block boundaries do not click.  Replies are played from a buffer in
`--list_play_chunk_size` frame blocks; while one is playing (and for the
output latency after it) the microphone is ignored (half duplex, as in the
seed), so the assistant does not answer its own voice.

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
from pathlib import Path
from typing import Any

import numpy as np

from connections.audio_sink import AudioSink
from TTS.stream_resample import StreamResampler
from utils.audio import PIPELINE_SAMPLE_RATE, resample
from utils.messages import AudioChunk, EndOfStream, TTSAudio, Turn

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


class PlaybackBuffer:
    """Reply audio waiting to be played, shared by the sink and the audio callback."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples = np.zeros(0, dtype=np.int16)

    def push(self, samples: np.ndarray) -> None:
        with self._lock:
            self._samples = np.concatenate([self._samples, samples])

    def read(self, frames: int) -> np.ndarray:
        """Exactly `frames` samples, padded with silence."""
        with self._lock:
            out, self._samples = self._samples[:frames], self._samples[frames:]
        if out.size < frames:
            out = np.concatenate([out, np.zeros(frames - out.size, dtype=np.int16)])
        return out

    def clear(self) -> None:
        with self._lock:
            self._samples = np.zeros(0, dtype=np.int16)

    @property
    def pending(self) -> int:
        with self._lock:
            return int(self._samples.size)


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
        latency_s: float = 0.2,
    ) -> None:
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
        self.playing = False
        self.started = threading.Event()

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
                while not self.stop_event.is_set():
                    mic, overflowed = stream.read(self.blocksize)
                    if overflowed:
                        logger.debug("microphone overflow: audio was lost")
                    reply = self.playback.read(self.blocksize)
                    stream.write(reply.reshape(-1, 1))
                    now = time.perf_counter()
                    if reply.any():
                        # Still audible until the output latency has passed.
                        muted_until = now + self.latency_s
                    self.playing = now < muted_until or self.playback.pending > 0
                    # Resampled even while muted, so the filter never sees a gap.
                    samples = mic[:, 0].copy() if resampler is None else resampler.push(mic[:, 0])
                    if self.playing or not self.should_listen.is_set():
                        continue  # half duplex: the mic is ignored while the assistant speaks
                    if samples.size:
                        self.queue_out.put(AudioChunk(samples=samples, sample_rate=PIPELINE_SAMPLE_RATE))
        except self.sd.PortAudioError as error:
            # Raised on: the ThreadManager stops the pipeline and reports it.
            raise AudioDeviceError(f"audio device failed: {error}") from None
        finally:
            self.started.set()
            self.queue_out.put(EndOfStream())


class LocalAudioSink(AudioSink):
    """Queues replies for playback and hands the turn back once they have played."""

    def setup(
        self,
        should_listen: threading.Event,
        playback: PlaybackBuffer,
        streamer: LocalAudioStreamer,
        metrics_file: str | Path | None = None,
    ) -> None:
        self.setup_sink(should_listen, metrics_file)
        self.playback = playback
        self.streamer = streamer

    def output(self, audio: TTSAudio) -> None:
        samples = audio.samples
        if audio.sample_rate != self.streamer.rate:
            samples = resample(samples, audio.sample_rate, self.streamer.rate)
        self.playback.push(samples)

    def finish_turn(self, turn: Turn) -> None:
        while self.playback.pending and not self.stop_event.is_set():
            time.sleep(0.02)

    def cleanup(self) -> None:
        self.playback.clear()
