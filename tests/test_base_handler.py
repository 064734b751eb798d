"""BaseHandler's thread body and ThreadManager, with small logic-only stages."""

import queue
import threading
import time

from baseHandler import BaseHandler
from tests.conftest import drain
from utils.messages import EndOfResponse, EndOfStream, LLMSentence, ResetConversation, Transcript, Turn
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
    from utils.messages import Session

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
