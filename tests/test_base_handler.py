"""BaseHandler's thread body and ThreadManager, with small logic-only stages."""

import queue
import threading
import time

from baseHandler import BaseHandler
from conversation.turn import Turn
from tests.conftest import drain
from utils.messages import EndOfResponse, EndOfStream, LLMSentence, ResetConversation, Transcript
from utils.thread_manager import ThreadManager


class Shout(BaseHandler):
    """Upper-cases transcripts into sentences; fails on the word 'boom'."""

    accepts = (Transcript,)

    def setup(self, suffix: str = "!") -> None:
        self.suffix = suffix
        self.resets = 0
        self.flushed = False
        self.cleaned = False

    def process(self, message):
        if "boom" in message.text:
            raise RuntimeError("boom")
        yield LLMSentence(message.text.upper() + self.suffix, message.language, message.turn)

    def flush(self):
        self.flushed = True
        yield LLMSentence("BYE", None, Turn())

    def on_reset(self):
        self.resets += 1

    def cleanup(self):
        self.cleaned = True


def make(**kwargs) -> Shout:
    return Shout(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs=kwargs)


def test_process_flush_pass_through_and_end_of_stream_in_order():
    handler = make(suffix="?")
    turn = Turn()
    for message in (Transcript("hi", "en", turn), EndOfResponse(turn), ResetConversation(), EndOfStream()):
        handler.queue_in.put(message)
    handler.run()
    out = drain(handler.queue_out)
    assert [type(m).__name__ for m in out] == [
        "LLMSentence", "EndOfResponse", "ResetConversation", "LLMSentence", "EndOfStream",
    ]  # fmt: skip
    assert out[0].text == "HI?" and out[3].text == "BYE"
    assert handler.resets == 1 and handler.flushed and handler.cleaned


def test_an_exception_ends_the_turn_and_the_thread_keeps_serving():
    handler = make()
    bad, good = Turn(), Turn()
    for message in (Transcript("boom", "en", bad), Transcript("ok", "en", good), EndOfStream()):
        handler.queue_in.put(message)
    handler.run()
    out = drain(handler.queue_out)
    assert isinstance(out[0], EndOfResponse) and out[0].turn is bad
    assert "boom" in bad.error
    assert isinstance(out[1], LLMSentence) and out[1].text == "OK!"


def test_thread_manager_stops_every_thread_quickly():
    stop = threading.Event()
    handlers = [Shout(stop, queue.Queue(), queue.Queue()) for _ in range(4)]
    manager = ThreadManager(handlers, stop)
    manager.start()
    assert len(manager.alive()) == 4
    began = time.perf_counter()
    manager.stop(timeout=2.0)
    assert manager.alive() == []
    assert time.perf_counter() - began < 1.0
    assert all(h.cleaned for h in handlers)


def test_end_of_stream_drains_a_chain_and_ends_all_threads():
    stop = threading.Event()
    q0, q1, q2 = queue.Queue(), queue.Queue(), queue.Queue()
    first, second = Shout(stop, q0, q1), Shout(stop, q1, q2)
    second.accepts = (LLMSentence,)  # type: ignore[misc]
    second.process = lambda m: iter([Transcript(m.text.lower(), None, m.turn)])  # type: ignore[method-assign]
    manager = ThreadManager([first, second], stop)
    manager.start()
    q0.put(Transcript("a", "en", Turn()))
    q0.put(EndOfStream())
    assert manager.wait(timeout=5)
    texts = [m.text for m in drain(q2) if isinstance(m, Transcript)]
    assert texts == ["a!", "bye"]


def test_turns_of_a_departed_client_are_dropped_not_forwarded():
    from conversation.session import Session

    session = Session()
    handler = make()
    old = Turn(session=session)
    session.close()  # the client left; a new conversation began
    new = Turn(session=Session())
    for message in (Transcript("old", "en", old), EndOfResponse(old), Transcript("new", "en", new), EndOfStream()):
        handler.queue_in.put(message)
    handler.run()
    out = drain(handler.queue_out)
    assert [getattr(m, "text", None) for m in out[:-2]] == ["NEW!"]
    assert old.stale and not new.stale


class Replier(BaseHandler):
    """Answers a transcript in two sentences and then its end, as the LLM's
    answer loop does (it stops generating once the turn is stale)."""

    accepts = (Transcript,)

    def process(self, message):
        turn = message.turn
        yield LLMSentence("One.", "en", turn)
        if not turn.stale:
            yield LLMSentence("Two.", "en", turn)
        yield EndOfResponse(turn)


class InterruptingQueue(queue.Queue):
    """The next stage's queue: the user talks over the reply while its first
    sentence is being handed on (a full queue makes that wait long)."""

    def put(self, item, block=True, timeout=None):
        super().put(item, block, timeout)
        if isinstance(item, LLMSentence):
            item.turn.interrupt(heard="")


def test_a_turn_interrupted_while_its_output_goes_out_still_sends_its_end():
    """The sink closes an interrupted turn (a realtime client's response.done)
    only on its EndOfResponse: the stage drops the rest of the reply but not
    that end, even when the interruption lands while an output is handed on."""
    handler = Replier(threading.Event(), queue.Queue(), InterruptingQueue())
    turn = Turn()
    turn.confirm()
    turn.mark("first_audio_out")
    for message in (Transcript("hi", "en", turn), EndOfStream()):
        handler.queue_in.put(message)
    handler.run()
    out = drain(handler.queue_out)
    assert [type(m).__name__ for m in out] == ["LLMSentence", "EndOfResponse", "EndOfStream"]
    assert out[1].turn is turn and turn.interrupted


def test_a_withdrawn_turn_sends_nothing_more():
    """A speculation withdrawn while its output goes out owes no end: the
    sink drops it unheard."""

    class Withdrawn(Replier):
        def process(self, message):
            yield LLMSentence("One.", "en", message.turn)
            message.turn.cancel()
            yield EndOfResponse(message.turn)

    handler = Withdrawn(threading.Event(), queue.Queue(), queue.Queue())
    for message in (Transcript("hi", "en", Turn()), EndOfStream()):
        handler.queue_in.put(message)
    handler.run()
    assert [type(m).__name__ for m in drain(handler.queue_out)] == ["LLMSentence", "EndOfStream"]


# --- a stage that dies stops the pipeline (not one turn's failure) --------------------


class Fragile(Shout):
    """Fails outside process(): where it fails is chosen per test."""

    def setup(self, fail_in: str = "") -> None:
        super().setup()
        self.fail_in = fail_in

    def on_reset(self):
        if self.fail_in == "on_reset":
            raise RuntimeError("reset broke")

    def flush(self):
        if self.fail_in == "flush":
            raise RuntimeError("flush broke")
        yield from ()

    def cleanup(self):
        super().cleanup()
        if self.fail_in == "cleanup":
            raise OSError("cannot write the output")


def run_chain(fail_in: str, message) -> tuple[ThreadManager, list[Shout], float]:
    """Three stages in a chain; the middle one is fragile.  Returns when the
    manager's threads ended (or after 5 s), with how long that took."""
    stop = threading.Event()
    q0, q1, q2, q3 = (queue.Queue() for _ in range(4))
    stages = [Shout(stop, q0, q1), Fragile(stop, q1, q2, setup_kwargs={"fail_in": fail_in}), Shout(stop, q2, q3)]
    manager = ThreadManager(stages, stop)
    manager.start()
    began = time.perf_counter()
    q0.put(message)
    deadline = began + 5
    while manager.alive() and time.perf_counter() < deadline:
        time.sleep(0.01)
    return manager, stages, time.perf_counter() - began


def test_a_stage_dying_on_reset_stops_every_stage_and_says_which():
    manager, stages, took = run_chain("on_reset", ResetConversation())
    assert manager.alive() == [], "the other stages must not stay half alive"
    assert took < 2.0
    assert manager.stop_event.is_set()
    failure = manager.failure
    assert failure is not None and failure.stage == "Fragile"
    assert str(failure) == "Fragile stopped: RuntimeError: reset broke"
    assert all(stage.cleaned for stage in stages)


def test_a_failing_flush_is_a_stage_failure_not_a_turn_failure():
    manager, _, _ = run_chain("flush", EndOfStream())
    assert manager.alive() == []
    assert manager.failure is not None and "flush broke" in str(manager.failure)


def test_a_failing_cleanup_is_reported_and_the_end_still_travels_on():
    manager, stages, _ = run_chain("cleanup", EndOfStream())
    assert manager.alive() == []
    assert str(manager.failure) == "Fragile stopped: cannot write the output"
    assert any(isinstance(m, EndOfStream) for m in drain(stages[2].queue_out))


def test_a_dying_helper_thread_stops_the_pipeline():
    stop = threading.Event()
    stages = [Shout(stop, queue.Queue(), queue.Queue()) for _ in range(2)]
    manager = ThreadManager(stages, stop)
    manager.start()

    def accept_loop():
        raise ConnectionError("accept failed")

    stages[1].start_worker(accept_loop, "Acceptor")
    assert stop.wait(2.0)
    manager.stop()
    assert manager.alive() == []
    assert str(manager.failure) == "Shout (Acceptor) stopped: accept failed"


def test_a_clean_end_reports_no_failure():
    manager, _, _ = run_chain("", EndOfStream())
    assert manager.alive() == [] and manager.failure is None


def test_stop_has_one_deadline_for_all_threads():
    """Three threads that ignore the stop: stop() gives up after its timeout
    in all, not after the timeout once per thread."""
    stop, release = threading.Event(), threading.Event()

    class Stubborn:
        name = "Stubborn"

        def run(self):
            release.wait(10)

    manager = ThreadManager([Stubborn(), Stubborn(), Stubborn()], stop)
    manager.start()
    began = time.perf_counter()
    manager.stop(timeout=0.5)
    took = time.perf_counter() - began
    release.set()
    assert took < 1.0 and len(manager.alive()) <= 3
