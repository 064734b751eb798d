"""Starts one thread per pipeline stage and stops them all, cleanly.

A stage whose thread dies (an exception outside a turn: on reset, at the end
of input, in cleanup, in a helper thread) must not leave the others running
half alive, accepting audio that nobody answers.  Each thread body runs
guarded: the first failure is recorded with the stage's name and the shared
stop event is set, so every stage ends and the entry point can report it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)


# Ctrl-C must end the program within 2 s; this leaves time to exit after the joins.
STOP_TIMEOUT_S = 1.5


class Runnable(Protocol):
    name: str

    def run(self) -> None: ...


@dataclass(frozen=True)
class StageFailure:
    """Which stage died, and of what."""

    stage: str
    error: BaseException

    def __str__(self) -> str:
        detail = str(self.error) or "no details"
        if isinstance(self.error, OSError):
            return f"{self.stage} stopped: {detail}"  # OSErrors already read as sentences
        return f"{self.stage} stopped: {type(self.error).__name__}: {detail}"


class StageFailedError(RuntimeError):
    """Raised by the entry point's wait when a stage died; its message is the one error line."""

    def __init__(self, failure: StageFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


class FailureRecord:
    """The first stage failure of a pipeline; later ones are logged only.

    Setting the stop event is what stops the other stages; the record is
    what the entry point reads to say why, and to exit non-zero.
    """

    def __init__(self, stop_event: threading.Event) -> None:
        self.stop_event = stop_event
        self._lock = threading.Lock()
        self.first: StageFailure | None = None

    def report(self, stage: str, error: BaseException) -> None:
        with self._lock:
            is_first = self.first is None
            if is_first:
                self.first = StageFailure(stage, error)
        # The traceback is for developers (--log_level debug); users get one line.
        logger.debug("%s died", stage, exc_info=error)
        if not is_first:
            logger.warning("%s also stopped: %s", stage, error)
        self.stop_event.set()


def run_guarded(body: Callable[[], None], stage: str, failures: FailureRecord) -> Callable[[], None]:
    """A thread target that reports an exception escaping `body` instead of
    letting the thread die silently."""

    def target() -> None:
        try:
            body()
        except BaseException as error:  # any death of a stage must stop the pipeline
            failures.report(stage, error)

    return target


class ThreadManager:
    """Owns the stage threads and the shared stop event.

    `stop()` sets the stop event (every stage polls it) and joins the threads
    within one deadline, so Ctrl-C never leaves a thread behind; `wait()`
    blocks until the stages end on their own (end of input drained through).
    `failure` says which stage died, if one did: its own thread body, or a
    helper thread a stage started with `BaseHandler.start_worker`.
    """

    def __init__(self, handlers: Sequence[Runnable], stop_event: threading.Event) -> None:
        self.handlers = list(handlers)
        self.stop_event = stop_event
        self.threads: list[threading.Thread] = []
        self.failures = FailureRecord(stop_event)

    def start(self) -> None:
        for handler in self.handlers[len(self.threads) :]:
            target = run_guarded(handler.run, handler.name, self.failures)
            thread = threading.Thread(target=target, name=handler.name, daemon=True)
            self.threads.append(thread)
            thread.start()

    def add(self, handlers: Sequence[Runnable]) -> None:
        """More threads, started now: a server that answers health probes
        runs while the models load, and the stages join it once loaded."""
        self.handlers.extend(handlers)
        self.start()

    @property
    def failure(self) -> StageFailure | None:
        if self.failures.first is not None:
            return self.failures.first
        for handler in self.handlers:
            record = getattr(handler, "worker_failures", None)
            if record is not None and record.first is not None:
                return record.first
        return None

    def wait(self, timeout: float | None = None) -> bool:
        """Join every thread; True when all of them ended."""
        for thread in self.threads:
            thread.join(timeout)
        return not self.alive()

    def alive(self) -> list[str]:
        return [thread.name for thread in self.threads if thread.is_alive()]

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop every stage within `timeout` seconds in all (not per thread).

        A stage inside one long model call (Piper speaking a long sentence on
        a busy machine: up to 2 s) cannot look at the stop event until it
        returns; it is not waited for past the deadline.  Stage threads are
        daemons, so the process still exits on time, leaving it behind.
        """
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = self.alive()
        if left:
            logger.warning("still busy %.1f s after the stop, not waited for: %s", timeout, ", ".join(left))
