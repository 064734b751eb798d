"""How many threads llama.cpp computes with: the cores the rest of the machine leaves it.

llama.cpp's threads wait for each other at every layer by spinning, so a
thread that shares its core with other work holds up all of them.  Measured
on 2 cores (AMD EPYC, qwen2.5-1.5b, benchmarks/RESULTS_llm_threads.md):
alone, two threads write 28.3 tokens/s against 18.1 for one; beside one busy
process, two threads fall to 7.7 tokens/s at 0.168 CPU seconds a token, while
one thread keeps 19.3 at 0.051.  The other work may be another process or this
one's own STT and TTS (the TTS speaks a sentence while the LLM writes the
next).  So while it generates, every `INTERVAL_S` the LLM measures how many
of its cores the rest used and takes the ones they left: all of them alone,
fewer beside a busy neighbour, at least one.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

INTERVAL_S = 0.25  # a few tokens: long enough to measure, short enough to follow a TTS burst
# Cores the others may use and still count as none: the LLM's own Python
# work between tokens and the kernel's are not all in its thread's time.
SLACK_CORES = 0.4
TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_seconds(cpus: frozenset[int]) -> float | None:
    """CPU seconds the machine has spent busy on `cpus` since boot (from
    /proc/stat), or None where that cannot be read (not Linux)."""
    try:
        with open("/proc/stat") as stat:
            lines = stat.readlines()
    except OSError:
        return None
    busy = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        # user nice system idle iowait irq softirq steal ...: all but idle and iowait
        fields = [int(value) for value in rest.split()]
        busy += sum(fields[:3]) + sum(fields[5:8])
    return busy / TICKS_PER_S


def threads_for(others_cores: float, most: int) -> int:
    """The threads to compute with when the rest of the machine keeps
    `others_cores` of its `most` cores busy: the cores they leave, at least one."""
    return max(1, min(most, most - math.ceil(others_cores - SLACK_CORES)))


class Sample(NamedTuple):
    wall: float
    busy: float  # the cores' busy CPU seconds
    own: float  # the computing thread's CPU seconds
    thread: int


class ThreadGovernor:
    """Sets llama.cpp's thread count (through `apply`) between tokens, from
    the cores the rest of the machine used in the last `interval_s`.

    What llama.cpp itself used is its calling thread's CPU time (that thread
    computes a share like each of the others) times the thread count."""

    def __init__(
        self,
        apply: Callable[[int], None],
        most: int,
        cpus: frozenset[int] | None = None,
        interval_s: float = INTERVAL_S,
        read_busy: Callable[[frozenset[int]], float | None] = busy_seconds,
        thread_clock: Callable[[], float] = time.thread_time,
        clock: Callable[[], float] = time.perf_counter,
        adaptive: bool = True,
    ) -> None:
        self.apply = apply
        self.most = most
        self.cpus = cpus if cpus is not None else frozenset(os.sched_getaffinity(0))
        self.interval_s = interval_s
        self.read_busy = read_busy
        self.thread_clock = thread_clock
        self.clock = clock
        self.threads = most
        # Off where the count was fixed, there is one core, or the load cannot be read.
        self.enabled = adaptive and most > 1 and read_busy(self.cpus) is not None
        self._last: Sample | None = None
        self.changes = 0  # how often the count moved (for the logs and tests)

    def _sample(self) -> Sample | None:
        busy = self.read_busy(self.cpus)
        if busy is None:
            return None
        return Sample(self.clock(), busy, self.thread_clock(), threading.get_ident())

    def step(self) -> int:
        """Between two pieces of llama.cpp work: measure, and set the thread
        count when the interval is up.  Returns the count in force."""
        if not self.enabled:
            return self.threads
        last = self._last
        if last is not None and last.thread == threading.get_ident() and self.clock() - last.wall < self.interval_s:
            return self.threads
        now = self._sample()
        if now is None:
            return self.threads
        self._last = now
        if last is None or last.thread != now.thread:
            return self.threads  # a baseline: CPU time is per thread
        wall = now.wall - last.wall
        others = max(0.0, (now.busy - last.busy) - self.threads * (now.own - last.own)) / wall
        wanted = threads_for(others, self.most)
        if wanted != self.threads:
            logger.debug("llama.cpp threads %d -> %d (the rest used %.2f cores)", self.threads, wanted, others)
            self.apply(wanted)
            self.threads = wanted
            self.changes += 1
        return self.threads

    def governed(self, items: Iterator[T]) -> Iterator[T]:
        """`items` (llama.cpp's token stream), the thread count set before each."""
        self.step()
        try:
            for item in items:
                yield item
                self.step()
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
