"""What a client's speaker played, handed from the playback side to the microphone side.

A client that plays replies through one audio stream and records through
another (listen_and_play.py: two PortAudio callbacks on their own threads)
needs the played audio next to each mic block for echo cancellation.  The
playback callback pushes what it wrote, the mic callback takes as many
samples as it recorded; both sides run at real time, so the queue stays
short, and its length is the part of the echo delay the canceller's delay
line then measures and follows.  Audio played at another rate than the mic's
is resampled on the way (soxr, streaming).
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
import soxr


class PlayedAudio:
    def __init__(self, played_rate: int, mic_rate: int, max_queued_s: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._blocks: deque[np.ndarray] = deque()
        self._queued = 0
        self._max_queued = int(max_queued_s * mic_rate)
        self._resampler = (
            soxr.ResampleStream(played_rate, mic_rate, 1, dtype="int16") if played_rate != mic_rate else None
        )

    def push(self, samples: np.ndarray) -> None:
        """The speaker has just been given `samples` (int16, the played rate)."""
        samples = np.asarray(samples, dtype=np.int16).reshape(-1)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        with self._lock:
            self._blocks.append(samples)
            self._queued += samples.size
            # The two streams' clocks drift apart; more than max_queued_s of
            # backlog is drift, not echo delay: the oldest audio goes.
            while self._queued > self._max_queued and self._blocks:
                self._queued -= self._blocks.popleft().size

    def take(self, frames: int) -> np.ndarray:
        """The next `frames` samples played (silence where nothing was)."""
        out: list[np.ndarray] = []
        wanted = frames
        with self._lock:
            while wanted and self._blocks:
                block = self._blocks[0]
                out.append(block[:wanted])
                if block.size > wanted:
                    self._blocks[0] = block[wanted:]
                else:
                    self._blocks.popleft()
                wanted -= out[-1].size
            self._queued -= frames - wanted
        if wanted:
            out.append(np.zeros(wanted, dtype=np.int16))
        return np.concatenate(out) if len(out) > 1 else out[0]
