"""The CPU baton: one compute stage at a time, the work needed soonest first (logic only, no models)."""

import queue
import threading
import time

import numpy as np

from baseHandler import BaseHandler
from conversation.turn import Turn
from STT.results import transcription_due
from TTS.speech_handler import SpeechHandler
from utils.cpu_baton import BACKGROUND_SLACK_S, REPLY_HORIZON_S, TTS_AHEAD_S, CpuBaton, later, reply_priority
from utils.messages import LLMSentence, SpeechProgress, SpeechSegment


def test_only_one_holder_computes_at_a_time():
    baton = CpuBaton()
    inside, most = [0], [0]
    lock = threading.Lock()

    def work():
        for _ in range(20):
            with baton.hold(None, "w"):
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.001)
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most[0] == 1


def queue_behind_a_holder(baton: CpuBaton, waiters: list[tuple[str, float]]) -> list[str]:
    """The order in which `waiters` (name, priority), queued in this order
    while another thread holds the baton, get it."""
    order: list[str] = []
    release, holding = threading.Event(), threading.Event()

    def holder():
        with baton.hold(0.0, "first"):
            holding.set()
            release.wait(5)

    def waiter(name: str, priority: float):
        with baton.hold(priority, name):
            order.append(name)

    first = threading.Thread(target=holder)
    first.start()
    assert holding.wait(5)
    threads = []
    for name, priority in waiters:
        thread = threading.Thread(target=waiter, args=(name, priority))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 5
        while len(baton._waiting) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.001)  # queued before the next one comes
    release.set()
    for thread in [first, *threads]:
        thread.join(5)
    return order


def test_the_most_urgent_waiter_goes_next_whatever_the_order_it_came_in():
    assert queue_behind_a_holder(CpuBaton(), [("later", 30.0), ("soon", 10.0), ("mid", 20.0)]) == [
        "soon",
        "mid",
        "later",
    ]


def test_equal_priorities_go_first_come_first_served():
    assert queue_behind_a_holder(CpuBaton(), [("a", 5.0), ("b", 5.0), ("c", 5.0)]) == ["a", "b", "c"]


def test_a_holder_may_take_it_again_and_an_off_baton_never_blocks():
    baton = CpuBaton()
    with baton.hold(1.0, "outer"):
        assert baton.held()
        with baton.hold(2.0, "inner"):  # nested work in the same thread: no deadlock
            assert baton.held()
        assert baton.held()
    assert not baton.held()
    off = CpuBaton(enabled=False)
    with off.hold(1.0), off.hold(1.0):
        assert not off.held()


def test_steps_hold_the_baton_for_each_item_only_and_let_others_in_between():
    """A long reply computed as it is pulled gives the cores back between its
    items: a more urgent holder gets in after the current item, not after all."""
    baton = CpuBaton()
    log: list[str] = []

    def urgent():
        with baton.hold(0.0, "tts"):
            log.append("tts")

    other = threading.Thread(target=urgent)

    def tokens():
        for index in range(5):
            log.append(f"token {index} held={baton.held()}")
            if index == 1:  # the TTS asks while the LLM computes its second token
                other.start()
                deadline = time.monotonic() + 5
                while not baton._waiting and time.monotonic() < deadline:
                    time.sleep(0.001)
            yield index

    pulled: list[int] = []
    for item in baton.steps(tokens(), lambda: 100.0, "llm"):
        assert not baton.held()  # handed on outside the hold
        pulled.append(item)
    other.join(5)
    assert pulled == [0, 1, 2, 3, 4]
    assert all("held=True" in line for line in log if line.startswith("token"))
    assert log.index("tts") == 2  # right after the token it was computing when the TTS asked


def test_steps_close_the_inner_generator_when_left_early():
    closed = threading.Event()

    def tokens():
        try:
            yield from range(100)
        finally:
            closed.set()

    steps = CpuBaton().steps(tokens(), lambda: None)
    assert next(steps) == 0
    steps.close()
    assert closed.is_set()


def test_background_work_ages_into_urgency():
    """Work for later asks `slack` from now: it goes after what is needed now,
    before anything asked once it has waited that long."""
    ahead = later(0.2)
    assert ahead > time.perf_counter()
    time.sleep(0.25)
    assert ahead < time.perf_counter()
    assert later() - time.perf_counter() <= BACKGROUND_SLACK_S


def test_a_turn_audio_is_due_at_once_until_sent_then_when_it_has_played_out():
    older, newer = Turn(), Turn()
    assert older.audio_due() <= newer.audio_due() <= time.perf_counter()  # first audio: oldest turn first
    now = time.perf_counter()
    older.playback.add("Three seconds.", 3 * 16000, 16000, when=now)
    assert older.audio_due() == now + 3.0
    assert newer.audio_due() < older.audio_due()  # a first sentence before anyone's later ones


def test_the_stages_priorities_put_a_reply_s_tts_before_its_llm_and_speech_followed_later():
    turn = Turn()
    turn.playback.add("Two seconds.", 2 * 16000, 16000)
    tts = SpeechHandler.work_priority(None, LLMSentence(text="Next.", language=None, turn=turn))  # type: ignore[arg-type]
    llm = turn.audio_due()  # what the llama.cpp handler asks per token
    assert tts == llm - TTS_AHEAD_S < llm
    audio = np.zeros(1600, dtype=np.float32)
    ended = Turn()
    asked = time.perf_counter()
    final = transcription_due(SpeechSegment(audio, 16000, turn=ended))
    followed = transcription_due(SpeechProgress(audio, 16000))
    pause = transcription_due(SpeechSegment(audio, 16000, turn=None, provisional=True))
    unanswered = transcription_due(SpeechSegment(audio, 16000, turn=Turn(respond=False)))
    assert final <= asked <= pause < followed
    assert pause < unanswered  # a turn that only joins the conversation is background work too
    assert followed <= time.perf_counter() + BACKGROUND_SLACK_S


class Counting(BaseHandler):
    """A stage whose every output is computed while it records whether it holds the baton."""

    accepts = (str,)

    def setup(self, priority: float | None = 1.0) -> None:
        self.priority = priority
        self.held: list[bool] = []

    def work_priority(self, message: str) -> float | None:
        return self.priority

    def process(self, message: str):
        for part in message.split():
            self.held.append(self.baton.held())
            yield part


def run_stage(handler: BaseHandler, *messages: str) -> list[str]:
    for message in messages:
        handler.queue_in.put(message)
    thread = threading.Thread(target=handler.run)
    thread.start()
    out: list[str] = []
    deadline = time.monotonic() + 10
    while len(out) < sum(len(m.split()) for m in messages) and time.monotonic() < deadline:
        try:
            out.append(handler.queue_out.get(timeout=0.1))
        except queue.Empty:
            pass
    handler.stop_event.set()
    thread.join(5)
    return out


def test_a_stage_computes_each_output_holding_the_baton_it_was_given():
    baton = CpuBaton()
    stage = Counting(threading.Event(), queue.Queue(), queue.Queue(), baton=baton)
    assert run_stage(stage, "one two three") == ["one", "two", "three"]
    assert stage.held == [True, True, True]
    assert not baton.held() and baton._holder is None  # given back


def test_a_stage_without_a_priority_or_with_the_baton_off_computes_without_it():
    baton = CpuBaton()
    no_model = Counting(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs={"priority": None}, baton=baton)
    assert run_stage(no_model, "a b") == ["a", "b"]
    assert no_model.held == [False, False]
    off = Counting(threading.Event(), queue.Queue(), queue.Queue(), baton=CpuBaton(enabled=False))
    assert run_stage(off, "c") == ["c"]
    assert off.held == [False]
    alone = Counting(threading.Event(), queue.Queue(), queue.Queue())  # built alone: a disabled baton
    assert not alone.baton.enabled


def test_a_reply_being_written_goes_before_background_work_however_far_ahead_its_audio_is():
    turn = Turn()
    turn.playback.add("Twenty seconds.", 20 * 16000, 16000)
    background = later()
    words = reply_priority(turn.audio_due())
    assert words <= time.perf_counter() + REPLY_HORIZON_S < background
    tts = SpeechHandler.work_priority(None, LLMSentence(text="Next.", language=None, turn=turn))  # type: ignore[arg-type]
    assert words < tts  # its own TTS waits until the audio made runs low
    first = Turn()
    assert reply_priority(first.audio_due()) == first.created_at  # a first sentence: at once
