"""The thread body shared by every pipeline stage.

A handler reads typed messages from one queue and writes to the next.  It only
sees the message types it declares in `accepts`; everything else (end of
response, reset, ...) is forwarded untouched, so stages can be chained without
knowing about each other.  One bad input must not take the pipeline down: an
exception while processing is logged, turned into an `EndOfResponse` for that
turn so the user is not left waiting, and the thread carries on.  An exception
anywhere else (on reset, at the end of input, in cleanup, in a helper thread
started with `start_worker`) is not one turn's problem: it escapes `run()`, and
the `ThreadManager` stops the whole pipeline and reports it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, ClassVar

from conversation.turn import Turn
from utils.cpu_baton import CpuBaton
from utils.messages import EndOfResponse, EndOfStream, ResetConversation
from utils.thread_manager import FailureRecord, run_guarded

logger = logging.getLogger(__name__)

_POLL_S = 0.1


class BaseHandler:
    """Setup and warm-up at construction, then `run()` in its own thread until stopped.

    Subclasses implement `setup(**kwargs)`, `process(message)` (a generator),
    and optionally `warmup()` (run once, right after `setup`), `flush()`,
    `on_reset()` and `cleanup()`.
    """

    accepts: ClassVar[tuple[type, ...]] = ()
    # A failed STT or LLM call ends the turn; a TTS stage that fails on one
    # sentence should keep speaking the rest, so it turns this off.
    end_turn_on_error: ClassVar[bool] = True

    def __init__(
        self,
        stop_event: threading.Event,
        queue_in: queue.Queue,
        queue_out: queue.Queue,
        setup_args: Iterable[Any] = (),
        setup_kwargs: dict[str, Any] | None = None,
        baton: CpuBaton | None = None,
    ) -> None:
        self.stop_event = stop_event
        # The cores, lent to one compute stage of the pipeline at a time
        # (utils/cpu_baton.py); a handler built alone gets a disabled one.
        self.baton = baton if baton is not None else CpuBaton(enabled=False)
        self.queue_in = queue_in
        self.queue_out = queue_out
        self.last_process_s: list[float] = []
        self.worker_failures = FailureRecord(stop_event)
        self.setup(*setup_args, **(setup_kwargs or {}))
        self.warmup()

    @property
    def name(self) -> str:
        return type(self).__name__

    # --- life cycle, overridden by stages -------------------------------------------
    def setup(self, *args: Any, **kwargs: Any) -> None:
        """Load models and allocate state; runs in the building thread."""

    def warmup(self) -> None:
        """Run the model once on dummy input so the first turn is not slow."""

    def process(self, message: Any) -> Iterator[Any]:
        raise NotImplementedError

    def work_priority(self, message: Any) -> float | None:
        """When the work `message` asks of this stage's model is needed (a
        `time.perf_counter()` value, earliest first): each output of
        `process(message)` is computed holding the CPU baton at this
        priority (utils/cpu_baton.py).  None (the default): the stage runs
        no model on it, or takes the baton itself in smaller steps (the LLM,
        per token)."""
        return None

    def handles(self, message: Any) -> bool:
        """Whether to process a message of an accepted type; False passes it
        on untouched (e.g. the TTS for a session that wants text only)."""
        return True

    def flush(self) -> Iterator[Any]:
        """Emit what is still buffered when the input ends."""
        return iter(())

    def on_reset(self) -> None:
        """Drop per-conversation state (a new client connected)."""

    def idle(self) -> None:
        """Called when no message came for a poll period (work driven by time,
        not by messages, such as closing a turn once its audio was heard)."""

    def cleanup(self) -> None:
        """Release resources; called once when the thread ends."""

    def start_worker(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Start a helper thread whose death stops the pipeline like the
        stage's own would (see `ThreadManager.failure`)."""
        thread = threading.Thread(
            target=run_guarded(target, f"{self.name} ({name})", self.worker_failures), name=name, daemon=True
        )
        thread.start()
        return thread

    def queued(self, matches: Callable[[Any], bool]) -> bool:
        """Whether a message waiting in this stage's input matches: work done
        ahead of time (following speech, reading a prompt ahead) is skipped
        when a newer message already makes it moot."""
        with self.queue_in.mutex:
            return any(matches(message) for message in self.queue_in.queue)

    # --- thread body ------------------------------------------------------------------
    def run(self) -> None:
        """Serve until stopped or the input ends; then clean up and pass the
        end on, whatever happened.  The first exception (serving, then
        cleanup) is re-raised for the ThreadManager."""
        failure: BaseException | None = None
        try:
            self._serve()
        except BaseException as error:  # re-raised below, after cleanup
            failure = error
        try:
            self.cleanup()
        except Exception as error:
            if failure is None:
                failure = error
            else:
                logger.warning("%s: cleanup failed too: %s", self.name, error)
        self.put(EndOfStream())
        if failure is not None:
            raise failure

    def resume_paused(self) -> bool:
        """Go on with work this stage paused to serve a newer message (the LLM
        interleaving replies, LLM/reply_interleave.py), when nothing more
        urgent waits; True when it did some (look at the queue again before
        waiting on it).  By default a stage pauses nothing."""
        return False

    def next_message(self) -> Any:
        """The next message to handle, waiting at most a poll period
        (queue.Empty: none).  By default the queue's order; a stage with
        paused work may leave the messages that must wait for it queued."""
        return self.queue_in.get(timeout=_POLL_S)

    def _serve(self) -> None:
        while not self.stop_event.is_set():
            if self.resume_paused():
                continue
            try:
                message = self.next_message()
            except queue.Empty:
                self.idle()
                continue
            if isinstance(message, EndOfStream):
                # Not one turn's failure: an exception here escapes run().
                for output in self.flush():
                    self.put(output)
                break
            if isinstance(message, ResetConversation):
                self.on_reset()
                self.put(message)
                continue
            turn = getattr(message, "turn", None)
            if turn is not None and turn.stale and not self._survives(message, turn):
                continue  # cancelled, or its client is gone: neither process nor forward
            if not (isinstance(message, self.accepts) and self.handles(message)):
                self.put(message)
                continue
            outputs = self.process(message)
            if self.baton.enabled and self.work_priority(message) is not None:
                outputs = self.baton.steps(outputs, partial(self.work_priority, message), self.name)
            self._emit_all(outputs, turn)

    def put(self, message: Any) -> None:
        """Hand a message on, waiting while the next stage's queue is full
        (back-pressure); gives up only when the pipeline stops."""
        while True:
            try:
                self.queue_out.put(message, timeout=_POLL_S)
                return
            except queue.Full:
                if self.stop_event.is_set():
                    return

    @staticmethod
    def _survives(message: Any, turn: Turn) -> bool:
        """Messages that declare it still travel for an interrupted turn
        (the end that lets the sink close it)."""
        return turn.interrupted and getattr(message, "survives_interruption", False)

    def _emit_all(
        self, outputs: Iterator[Any], turn: Turn | None = None, pause: Callable[[Any], bool] | None = None
    ) -> bool:
        """Drain one process() generator into the output queue; its failure ends that turn only.

        `pause(output)`, asked after each output is handed on, may stop the
        draining early: the generator is then left open (suspended at that
        output) and True returned, for the caller to drain it later."""
        start = time.perf_counter()
        paused = False
        try:
            for output in outputs:
                if turn is not None and turn.stale and not self._survives(output, turn):
                    if not turn.interrupted:
                        return False  # withdrawn: nothing of it travels on
                    # Interrupted: the generator stops at its next step, but the
                    # end it still owes (EndOfResponse) must reach the sink, which
                    # closes the turn (a realtime client's response.done).
                    continue
                self.put(output)
                if self.stop_event.is_set() or (turn is not None and turn.stale and not turn.interrupted):
                    return False
                if pause is not None and pause(output):
                    paused = True
                    return True
        except Exception as error:
            # One line for the user; the traceback only with --log_level debug.
            message = " ".join(str(error).split()) or type(error).__name__
            logger.error("%s failed on turn %s: %s", self.name, getattr(turn, "turn_id", "-"), message)
            logger.debug("%s failed", self.name, exc_info=True)
            if turn is not None and self.end_turn_on_error:
                turn.error = f"{self.name}: {message}"
                self.put(EndOfResponse(turn=turn))
        finally:
            close = None if paused else getattr(outputs, "close", None)
            if close is not None:
                close()  # a generator left early releases its resources now
            self.last_process_s.append(time.perf_counter() - start)
            del self.last_process_s[:-100]
        return False
