"""llama.cpp's thread count following the load (LLM/llama_threads.py): the rule on scripted
clocks, and the real model beside a real busy process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from LLM.llama_threads import ThreadGovernor, busy_seconds, threads_for
from utils.threads import physical_cores


@pytest.mark.parametrize(
    "others,most,threads",
    [(0.0, 2, 2), (0.3, 2, 2), (0.5, 2, 1), (1.0, 2, 1), (1.9, 2, 1), (1.2, 4, 3), (2.5, 4, 1), (0.0, 1, 1)],
)
def test_the_threads_are_the_cores_the_others_leave_at_least_one(others, most, threads):
    assert threads_for(others, most) == threads


class Script:
    """Clocks the governor reads: the cores' busy seconds, the thread's own, the wall."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.busy = 0.0
        self.own = 0.0

    def run(self, seconds: float, llm_threads: int, others_cores: float) -> None:
        """`seconds` of the LLM computing on `llm_threads` beside `others_cores` of other work."""
        self.wall += seconds
        self.own += seconds
        self.busy += seconds * (llm_threads + others_cores)


def governor(script: Script, applied: list[int], most: int = 2) -> ThreadGovernor:
    return ThreadGovernor(
        applied.append,
        most,
        cpus=frozenset(range(most)),
        read_busy=lambda cpus: script.busy,
        thread_clock=lambda: script.own,
        clock=lambda: script.wall,
    )


def test_a_busy_neighbour_takes_a_thread_away_and_gives_it_back_when_it_stops():
    script, applied = Script(), []
    threads = governor(script, applied)
    assert threads.step() == 2 and applied == []  # the baseline
    script.run(0.3, 2, 0.0)
    assert threads.step() == 2 and applied == []  # alone: every core
    script.run(0.3, 2, 0.8)
    assert threads.step() == 1 and applied == [1]  # a neighbour computes
    script.run(0.3, 1, 1.0)
    assert threads.step() == 1 and applied == [1]  # it still does: one thread, measured as such
    script.run(0.3, 1, 0.0)
    assert threads.step() == 2 and applied == [1, 2]  # it stopped
    assert threads.changes == 2


def test_nothing_is_measured_before_the_interval_is_up():
    script, applied = Script(), []
    threads = governor(script, applied)
    threads.step()
    script.run(0.1, 2, 2.0)
    assert threads.step() == 2 and applied == []
    script.run(0.2, 2, 2.0)
    assert threads.step() == 1 and applied == [1]


def test_a_call_from_another_thread_is_a_new_baseline_not_a_measurement():
    """CPU time is per thread: the read-ahead and the reply may run on different ones."""
    script, applied = Script(), []
    threads = governor(script, applied)
    threads.step()
    script.run(0.5, 2, 0.0)
    script.own = 0.0  # another thread's clock
    other = threading.Thread(target=threads.step)
    other.start()
    other.join()
    assert applied == []  # a baseline there, no change from a meaningless difference


def test_no_reading_or_one_core_leaves_the_count_alone():
    applied = []
    unreadable = ThreadGovernor(applied.append, 2, cpus=frozenset({0}), read_busy=lambda cpus: None)
    one_core = ThreadGovernor(applied.append, 1, cpus=frozenset({0}), read_busy=lambda cpus: 0.0)
    assert not unreadable.enabled and not one_core.enabled
    assert unreadable.step() == 2 and one_core.step() == 1 and applied == []


def test_leaving_the_stream_early_closes_llama_cpps_generator():
    closed = []

    def tokens():
        try:
            yield from ("a", "b", "c")
        finally:
            closed.append(True)

    script, applied = Script(), []
    stream = governor(script, applied).governed(tokens())
    assert next(stream) == "a"
    stream.close()
    assert closed == [True]


def test_the_cores_busy_time_is_read_from_the_kernel():
    import os

    cpus = frozenset(os.sched_getaffinity(0))
    before = busy_seconds(cpus)
    deadline = time.perf_counter() + 0.3
    while time.perf_counter() < deadline:
        pass
    after = busy_seconds(cpus)
    assert before is not None and after is not None and after - before >= 0.2


@pytest.mark.slow
@pytest.mark.skipif(physical_cores() < 2, reason="one core: llama.cpp computes on one thread anyway")
def test_the_real_model_beside_a_busy_process_computes_on_fewer_threads(llm_handler):
    """The packaged model through its handler, with a Python loop computing
    beside it the whole time: by the end of a reply llama.cpp has given up a
    core.  (Alone it keeps them all: the scripted tests; on a shared test
    machine nothing is ever alone.)"""
    assert llm_handler.threads.enabled
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        story = [
            {"role": "system", "content": "You write long, detailed stories."},
            {"role": "user", "content": "Tell me a long story about a cat who learns to sail."},
        ]
        pieces = list(llm_handler.generate(story, 80))
    finally:
        busy.kill()
        busy.wait()
    assert len(pieces) >= 40  # a second or more of generation: several measurements
    assert llm_handler.threads.threads < physical_cores()
