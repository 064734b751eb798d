"""Reply audio waiting for the local sound card, kept per turn.

The sink pushes each sentence's audio as soon as the TTS has it (faster than
real time); the audio thread reads one device block at a time.  Keeping the
turn with its audio lets the audio thread stop an interrupted reply within
one block (a stale turn's audio is dropped, never played) and tell each
turn's `PlaybackLog` what the device really played, so the chat remembers
the words the user heard, not the words sent.  A reply paused while a sound
over it is judged (`PlaybackLog.paused`) stays here, and the device plays
silence until it resumes from the same sample or is dropped.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from conversation.turn import Turn


class PlaybackBuffer:
    """Reply audio waiting to be played, shared by the sink and the audio thread."""

    def __init__(self, sample_rate: int = 16000, output_latency_s: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._pieces: deque[tuple[Turn | None, np.ndarray]] = deque()
        self.sample_rate = sample_rate  # the device's rate: pushed audio is already at it
        self.output_latency_s = output_latency_s  # from the device taking a sample to the speaker

    def push(self, samples: np.ndarray, turn: Turn | None = None) -> None:
        if samples.size:
            with self._lock:
                self._pieces.append((turn, samples))

    def read(self, frames: int) -> np.ndarray:
        """Exactly `frames` samples, padded with silence; audio of a turn that
        became stale (interrupted, withdrawn, its session closed) is dropped,
        audio of a paused one waits."""
        now = time.perf_counter()
        out: list[np.ndarray] = []
        wanted = frames
        with self._lock:
            self._drop_stale(now)
            while wanted and self._pieces:
                turn, samples = self._pieces[0]
                if turn is not None and turn.playback.paused(now):
                    break
                taken, rest = samples[:wanted], samples[wanted:]
                if rest.size:
                    self._pieces[0] = (turn, rest)
                else:
                    self._pieces.popleft()
                out.append(taken)
                wanted -= taken.size
                if turn is not None:
                    turn.playback.record_device_playback(taken.size, self.sample_rate, now, self.output_latency_s)
        if wanted:
            out.append(np.zeros(wanted, dtype=np.int16))
        return np.concatenate(out) if len(out) > 1 else out[0]

    def drop_stale(self) -> None:
        """Forget the audio of stale turns now (the sink calls this when an
        interrupted turn ends, in case the audio thread has not read since)."""
        with self._lock:
            self._drop_stale(time.perf_counter())

    def _drop_stale(self, now: float) -> None:
        if not any(turn is not None and turn.stale for turn, _ in self._pieces):
            return
        kept: deque[tuple[Turn | None, np.ndarray]] = deque()
        for turn, samples in self._pieces:
            if turn is not None and turn.stale:
                # The device still plays what it already took, for one output latency.
                log = turn.playback
                turn.mark("audio_stopped", log.silent_at() if log.device_samples is not None else now)
            else:
                kept.append((turn, samples))
        self._pieces = kept

    def clear(self) -> None:
        with self._lock:
            self._pieces.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(samples.size for _, samples in self._pieces)
