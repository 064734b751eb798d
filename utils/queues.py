"""Bounded queues between the stages: what happens when a consumer falls behind.

- Live audio into the VAD (`LiveAudioQueue`): a microphone or a network client
  cannot be asked to wait, so when the VAD is more than `max_seconds` behind,
  the oldest audio is dropped, with a warning (rate-limited).  Control
  messages (commits, typed messages, end of stream) are never dropped.
- Between model stages (`StageQueue`): back-pressure.  A stage whose next
  stage is slow waits to put (see `BaseHandler.put`); the chain has no cycle,
  so waiting cannot deadlock, and a turn's output is bounded anyway (a reply
  is at most `max_tokens` long), so the bound only matters when many sessions
  pile up work.
"""

from __future__ import annotations

import logging
import queue
import time
from typing import Any

from utils.messages import AudioChunk

logger = logging.getLogger(__name__)

STAGE_QUEUE_SIZE = 256


class StageQueue(queue.Queue):
    def __init__(self, maxsize: int = STAGE_QUEUE_SIZE) -> None:
        super().__init__(maxsize)


class LiveAudioQueue(queue.Queue):
    """Unbounded for control messages; audio beyond `max_seconds` drops the oldest."""

    def __init__(self, max_seconds: float = 10.0) -> None:
        super().__init__()
        self.max_seconds = max_seconds
        self._queued_s = 0.0
        self.dropped_s = 0.0
        self._warned_at = 0.0

    def _put(self, item: Any) -> None:  # called with the queue's lock held
        if isinstance(item, AudioChunk):
            self._queued_s += len(item.samples) / item.sample_rate
            while self._queued_s > self.max_seconds and self._drop_oldest_audio():
                pass
        super()._put(item)

    def _get(self) -> Any:
        item = super()._get()
        if isinstance(item, AudioChunk):
            self._queued_s -= len(item.samples) / item.sample_rate
        return item

    def _drop_oldest_audio(self) -> bool:
        for index, item in enumerate(self.queue):
            if isinstance(item, AudioChunk):
                del self.queue[index]
                seconds = len(item.samples) / item.sample_rate
                self._queued_s -= seconds
                self.dropped_s += seconds
                now = time.monotonic()
                if now - self._warned_at > 5.0:
                    self._warned_at = now
                    logger.warning(
                        "the VAD is over %.0f s behind the live audio: oldest audio dropped (%.1f s so far)",
                        self.max_seconds,
                        self.dropped_s,
                    )
                return True
        return False
