"""One CPU budget for the stages: the cores are lent to one compute stage at a time, most urgent first.

The STT (CTranslate2), the LLM (llama.cpp) and the TTS (onnxruntime) each
run a pool of one thread per usable core (utils/threads.py).  Left to run
side by side in one process they oversubscribe the cores, and llama.cpp's
threads, which wait for each other at every layer by spinning, collapse: on
2 cores the packaged 1.5B fell from about 15 to 1-3 tokens/s while another
process computed (issue 21; in one process, see benchmarks/RESULTS_contention.md).  So each stage takes the
baton for one small unit of work (an LLM token, a TTS piece, an STT decode)
and only the holder computes: its threads have every core, and nobody spins
against them.  Units are short, so a long reply never keeps the TTS from its
next sentence for more than a token's time.

Who goes next is decided by `priority`, a `time.perf_counter()` value: when
the work's result is needed, earliest first (equal: first come).  The stages
say when (`BaseHandler.work_priority`, `Turn.audio_due`):

- a turn's audio is due when the audio already sent to its listener has
  played out, or, before any was sent, at once (since the turn began: the
  oldest turn's first audio goes first, before anyone's later sentences);
- its TTS asks `TTS_AHEAD_S` before that, its LLM for the next words at that
  time but never later than `REPLY_HORIZON_S` from now (`reply_priority`):
  a reply being written goes before background work, and its own TTS goes
  before its next words once the audio made runs low;
- background work (following speech, reading a prompt ahead, transcribing a
  turn nobody will answer) asks `later()`, `BACKGROUND_SLACK_S` from now, and
  goes first once it has waited that long, so nothing starves.

A thread that holds the baton may take it again (nested work).
`--cpu_baton False` (a disabled baton) lets every stage compute whenever it
likes.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

# A TTS piece asks this long before its turn's audio is due, so it goes before
# the same reply's next LLM token (asked for at the due time itself).
TTS_AHEAD_S = 0.5
# A reply's next words are asked for at the latest this long from now, however
# much of its audio is still to play: a reply being written goes before
# background work, and its own TTS goes first only once the audio it has made
# is within TTS_AHEAD_S + REPLY_HORIZON_S of running dry.
REPLY_HORIZON_S = 1.0
# Background work (following speech, reading a prompt ahead, transcribing a
# turn nobody will answer) waits this long behind what is needed now before it
# goes first: longer than REPLY_HORIZON_S, so a reply being written goes
# first, and a speaker's captions still come within seconds.
BACKGROUND_SLACK_S = 3.0


class CpuBaton:
    """Lend the process's cores to one holder at a time, earliest priority first."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Condition()
        self._holder: int | None = None  # the holding thread's ident
        self._depth = 0
        self._waiting: list[tuple[float, int, int]] = []  # (priority, arrival, thread ident)
        self._arrivals = itertools.count()
        self.holder_name = ""  # who took it last (for debugging)

    @contextmanager
    def hold(self, priority: float | None = None, who: str = "") -> Iterator[None]:
        """Compute inside this block.  `priority`: when the result is needed
        (a perf_counter value, earliest first; None: now).  `who` names the
        holder for debugging (`holder_name`)."""
        if not self.enabled:
            yield
            return
        me = threading.get_ident()
        with self._lock:
            if self._holder == me:  # nested: already ours
                self._depth += 1
            else:
                ticket = (time.perf_counter() if priority is None else priority, next(self._arrivals), me)
                heapq.heappush(self._waiting, ticket)
                while self._holder is not None or self._waiting[0] != ticket:
                    self._lock.wait()
                heapq.heappop(self._waiting)
                self._holder, self._depth, self.holder_name = me, 1, who
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self._holder = None
                    self._lock.notify_all()

    def held(self) -> bool:
        """Whether the calling thread holds the baton."""
        return self._holder == threading.get_ident()

    def steps(self, items: Iterator[T], priority: Callable[[], float | None], who: str = "") -> Iterator[T]:
        """`items`, each one computed holding the baton at `priority()` (asked
        anew for every item) and handed on after it is released: a generator
        that computes as it is pulled (llama.cpp's token stream) gives the
        cores back between its items.  Off, the items pass straight through:
        `priority()` (a reply's audio due time, per token) is not worked out."""
        if not self.enabled:
            yield from items
            return
        done = object()
        try:
            while True:
                with self.hold(priority(), who):
                    item = next(items, done)
                if item is done:
                    return
                yield item  # type: ignore[misc]
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # left early: the inner generator releases its resources now


def reply_priority(audio_due: float) -> float:
    """When a reply's next words are needed, given when its audio is due:
    then, or `REPLY_HORIZON_S` from now if that is sooner."""
    return min(audio_due, time.perf_counter() + REPLY_HORIZON_S)


def later(slack_s: float = BACKGROUND_SLACK_S) -> float:
    """The priority of background work asked for now: `slack_s` behind what
    is needed now, so it goes first once it has waited that long."""
    return time.perf_counter() + slack_s
