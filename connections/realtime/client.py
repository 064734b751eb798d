"""A realtime client on the official `openai` SDK: speak a recording, gather the reply.

Used by the tests, the benchmarks and the soak run, so they all talk to the
server exactly as an application built on the SDK would: audio streamed at
real-time pace in 20 ms appends, then silence (so server turn detection
hears the end), while a reader thread collects every server event with the
time it arrived.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audio.pcm import int16_to_float
from conversation.playback import PlaybackLog

RATE = 24000
FRAME_S = 0.02


def to_pcm24k(samples: np.ndarray, sample_rate: int) -> bytes:
    """int16 (or float) samples -> the API's 24 kHz little-endian PCM16."""
    import soxr

    audio = int16_to_float(samples) if samples.dtype == np.int16 else samples.astype(np.float32)
    resampled = soxr.resample(audio, sample_rate, RATE) if sample_rate != RATE else audio
    return (np.clip(resampled, -1.0, 1.0) * 32767).astype("<i2").tobytes()


@dataclass
class Received:
    """One server event and when (perf_counter) it arrived."""

    at: float
    event: Any


@dataclass
class Conversation:
    """One SDK connection with a reader thread; events pile up in `events`."""

    connection: Any
    events: list[Received] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, name="realtime-client-reader", daemon=True).start()

    def _read(self) -> None:
        try:
            for event in self.connection:
                with self._changed:
                    self.events.append(Received(time.perf_counter(), event))
                    self._changed.notify_all()
        except Exception:
            pass
        finally:
            self.closed.set()
            with self._changed:
                self._changed.notify_all()

    def send(self, event: dict[str, Any]) -> None:
        self.connection.send(event)

    def append(self, pcm: bytes) -> None:
        self.connection.input_audio_buffer.append(audio=base64.b64encode(pcm).decode())

    def speak(self, pcm: bytes, silence_s: float = 1.0, pace: float = 1.0) -> float:
        """Stream speech then silence at real-time pace; returns when (perf
        counter) the last speech sample was sent."""
        step = int(RATE * FRAME_S) * 2
        began = time.perf_counter()
        sent = 0
        for start in range(0, len(pcm), step):
            self.append(pcm[start : start + step])
            sent += FRAME_S
            delay = began + sent / pace - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        speech_end = time.perf_counter()
        silence = bytes(step)
        for _ in range(int(silence_s / FRAME_S)):
            self.append(silence)
            sent += FRAME_S
            delay = began + sent / pace - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        return speech_end

    def wait_for(self, kind: str, timeout: float = 60.0, after: int = 0, count: int = 1) -> list[Received]:
        """The first `count` events of `kind` from index `after` on; raises on timeout."""
        deadline = time.perf_counter() + timeout
        with self._changed:
            while True:
                found = [r for r in self.events[after:] if r.event.type == kind]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.perf_counter()
                if left <= 0 or self.closed.is_set():
                    seen = [r.event.type for r in self.events[after:]]
                    raise TimeoutError(f"no {kind} (x{count}) within {timeout} s; got {seen}")
                self._changed.wait(min(left, 0.2))

    def of(self, kind: str, after: int = 0) -> list[Any]:
        with self._changed:
            return [r.event for r in self.events[after:] if r.event.type == kind]

    def reply_audio(self, after: int = 0) -> np.ndarray:
        """The reply's audio deltas joined, as int16 at 24 kHz."""
        data = b"".join(base64.b64decode(e.delta) for e in self.of("response.output_audio.delta", after))
        return np.frombuffer(data, dtype="<i2").astype(np.int16)

    def playback(self, response_id: str | None = None) -> PlaybackLog:
        """The reply audio (of `response_id`, or all) as a client that plays
        each delta as it arrives, after the one before it, hears it: the
        server's own model of a network listener (conversation/playback.py)."""
        with self._changed:
            deltas = [r for r in self.events if r.event.type == "response.output_audio.delta"]
        log = PlaybackLog()
        for received in deltas:
            if response_id is None or received.event.response_id == response_id:
                log.add("", len(base64.b64decode(received.event.delta)) // 2, RATE, when=received.at)
        return log

    def close(self) -> None:
        try:
            self.connection.close()
        finally:
            self.closed.wait(5)


def connect(port: int, api_key: str = "none", host: str = "127.0.0.1", **options: Any) -> Conversation:
    """Open a conversation with the SDK, as an application would."""
    from openai import OpenAI

    client = OpenAI(api_key=api_key, base_url=f"http://{host}:{port}/v1", **options)
    manager = client.realtime.connect(model="s2s")
    return Conversation(manager.enter())
