"""Microphone audio at the device's own rate is resampled without clicks.

A device that cannot do 16 kHz (here 44.1 kHz, the usual laptop rate) gives
blocks that local mode resamples to 16 kHz.  Resampling each block as a
whole signal puts an edge transient at every block boundary, 31 times a
second; one streaming resampler for the whole stream does not.  The real
LocalAudioStreamer thread runs here against a stand-in sound device that
serves a 440 Hz sine (this machine has no sound card; local mode's real audio
path is tested in test_local_mode.py).
"""

from __future__ import annotations

import queue
import threading

import numpy as np

from audio.pcm import resample
from audio.stream_resample import StreamResampler
from connections import local_audio_streamer
from connections.local_audio_streamer import LocalAudioStreamer, PlaybackBuffer
from utils.messages import AudioChunk

DEVICE_RATE = 44100
TONE_HZ = 440.0
AMPLITUDE = 16000


def sine(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)


def largest_jump(audio: np.ndarray, rate: int) -> float:
    """The largest second difference, relative to a pure tone's (1.0: smooth).
    A click at a block boundary is a jump many times the tone's own."""
    smooth = AMPLITUDE * (2 * np.pi * TONE_HZ / rate) ** 2
    return float(np.abs(np.diff(audio.astype(np.float64), 2)).max() / smooth)


class FakeDevice:
    """A 44.1 kHz-only full-duplex device whose microphone plays a sine."""

    class PortAudioError(Exception):
        pass

    def __init__(self, stop: threading.Event, blocks: int) -> None:
        self.mic = sine(DEVICE_RATE, 3.0)
        self.stop, self.blocks = stop, blocks
        self.position = 0
        self.reads = 0

    def query_devices(self, device=None, kind=None):
        info = {"name": "fake 44.1k", "max_input_channels": 1, "max_output_channels": 1, "default_samplerate": 44100.0}
        return info if kind else [info]

    def check_input_settings(self, **kwargs):
        if kwargs["samplerate"] != DEVICE_RATE:
            raise self.PortAudioError("Invalid sample rate")

    check_output_settings = check_input_settings

    def Stream(self, **kwargs):  # sounddevice's name
        assert kwargs["samplerate"] == DEVICE_RATE
        device = self

        class Stream:
            latency = (0.02, 0.05)  # input, output (s), as sounddevice reports them
            read_available = 0  # nothing piled up in the device
            capacity = 2048  # the speaker's buffer (frames)
            queued = 0  # frames in it, played at the mic's pace

            @property
            def write_available(self):
                return self.capacity - self.queued

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return None

            def read(self, frames):
                block = device.mic[device.position : device.position + frames]
                device.position += frames
                device.reads += 1
                if device.reads >= device.blocks:
                    device.stop.set()
                self.queued = max(0, self.queued - frames)
                return block.reshape(-1, 1), False

            def write(self, data):
                self.queued += len(data)
                return False  # no underflow

        return Stream()


def mic_through_local_mode(monkeypatch, blocks: int) -> np.ndarray:
    stop, chunks = threading.Event(), queue.Queue()
    device = FakeDevice(stop, blocks)
    monkeypatch.setattr(local_audio_streamer, "import_sounddevice", lambda: device)
    listening = threading.Event()
    listening.set()
    streamer = LocalAudioStreamer(stop, chunks, listening, PlaybackBuffer(), list_play_chunk_size=512)
    assert streamer.rate == DEVICE_RATE
    streamer.run()
    pieces = []
    while not chunks.empty():
        message = chunks.get()
        if isinstance(message, AudioChunk):
            assert message.sample_rate == 16000
            pieces.append(message.samples)
    return np.concatenate(pieces)


def test_a_44k_sine_through_the_microphone_path_has_no_discontinuities(monkeypatch):
    audio = mic_through_local_mode(monkeypatch, blocks=200)  # 2.3 s in 512-frame blocks
    assert audio.dtype == np.int16
    steady = audio[200:]  # past the stream's start
    assert largest_jump(steady, 16000) < 1.1, "a click: the resampler restarted between blocks"
    expected = 200 * 512 * 16000 / DEVICE_RATE
    assert expected - 1000 < audio.size <= expected + 1  # less only by the filter delay the resampler holds
    # And it is the tone, at 16 kHz: what resampling the whole signal at once gives.
    whole = resample(sine(DEVICE_RATE, 3.0), DEVICE_RATE, 16000)[: audio.size].astype(np.int32)
    assert np.abs(whole[200:] - audio[200:].astype(np.int32)).max() <= 4


def test_block_by_block_resampling_would_click():
    """The failure the test above guards against, measured the same way."""
    blocks = [sine(DEVICE_RATE, 1.0)[i : i + 512] for i in range(0, DEVICE_RATE - 512, 512)]
    per_block = np.concatenate([resample(block, DEVICE_RATE, 16000) for block in blocks])
    assert largest_jump(per_block[200:], 16000) > 5


def test_int16_stream_resampler_matches_the_whole_signal():
    tone = sine(DEVICE_RATE, 1.0)
    resampler = StreamResampler(DEVICE_RATE, 16000, input_dtype="int16")
    pieces = [resampler.push(tone[i : i + 441]) for i in range(0, tone.size, 441)] + [resampler.flush()]
    streamed = np.concatenate(pieces)
    whole = resample(tone, DEVICE_RATE, 16000)
    assert streamed.dtype == np.int16 and abs(streamed.size - whole.size) <= 1
    n = min(streamed.size, whole.size)
    assert np.abs(streamed[:n].astype(np.int32) - whole[:n]).max() <= 4
