"""Starts one thread per pipeline stage and stops them all, cleanly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

logger = logging.getLogger(__name__)


class Runnable(Protocol):
    name: str

    def run(self) -> None: ...


class ThreadManager:
    """Owns the stage threads and the shared stop event.

    `stop()` sets the stop event (every stage polls it) and joins each thread
    with a deadline, so Ctrl-C never leaves a thread behind; `wait()` blocks
    until the stages end on their own (end of input drained through).
    """

    def __init__(self, handlers: Sequence[Runnable], stop_event: threading.Event) -> None:
        self.handlers = list(handlers)
        self.stop_event = stop_event
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for handler in self.handlers:
            thread = threading.Thread(target=handler.run, name=handler.name, daemon=True)
            self.threads.append(thread)
            thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Join every thread; True when all of them ended."""
        for thread in self.threads:
            thread.join(timeout)
        return not self.alive()

    def alive(self) -> list[str]:
        return [thread.name for thread in self.threads if thread.is_alive()]

    def stop(self, timeout: float = 2.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)
        left = self.alive()
        if left:
            logger.warning("threads still running after stop: %s", ", ".join(left))
