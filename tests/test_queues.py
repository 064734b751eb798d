"""What the queues between stages do when a consumer falls behind."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from baseHandler import BaseHandler
from conversation.session import Session
from tests.conftest import drain
from utils.messages import AudioChunk, CommitInput, EndOfStream
from utils.queues import LiveAudioQueue, StageQueue


def chunk(value: int, seconds: float = 1.0) -> AudioChunk:
    return AudioChunk(samples=np.full(int(16000 * seconds), value, np.int16), sample_rate=16000)


def test_live_audio_beyond_the_bound_drops_the_oldest_audio_never_a_control_message():
    audio = LiveAudioQueue(max_seconds=3.0)
    session = Session()
    audio.put(chunk(1))
    audio.put(CommitInput(session=session))
    for value in (2, 3, 4, 5):
        audio.put(chunk(value))
    items = drain(audio)
    kept = [int(item.samples[0]) for item in items if isinstance(item, AudioChunk)]
    assert kept == [3, 4, 5]  # the newest 3 s
    assert any(isinstance(item, CommitInput) for item in items)
    assert audio.dropped_s == 2.0


def test_a_slow_stage_makes_the_one_before_it_wait_and_nothing_is_lost():
    class Echo(BaseHandler):
        accepts = (int,)

        def process(self, message):
            yield message

    stop = threading.Event()
    source, slow = StageQueue(), StageQueue(maxsize=4)
    stage = Echo(stop, source, slow)
    for number in range(20):
        source.put(number)
    source.put(EndOfStream())
    thread = threading.Thread(target=stage.run)
    thread.start()
    time.sleep(0.3)
    assert slow.qsize() == 4 and thread.is_alive()  # waiting for room, not dropping
    received = []
    while len(received) < 21:
        received.append(slow.get(timeout=5))
    thread.join(5)
    assert received[:20] == list(range(20)) and isinstance(received[20], EndOfStream)


def test_a_waiting_stage_gives_up_when_the_pipeline_stops():
    class Echo(BaseHandler):
        accepts = (int,)

        def process(self, message):
            yield message

    stop = threading.Event()
    source, full = queue.Queue(), StageQueue(maxsize=1)
    full.put(0)
    source.put(1)
    stage = Echo(stop, source, full)
    thread = threading.Thread(target=stage.run)
    thread.start()
    time.sleep(0.2)
    stop.set()
    thread.join(2)
    assert not thread.is_alive()
