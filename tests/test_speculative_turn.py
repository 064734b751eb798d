"""Speculative turns, stage by stage: the LLM answer loop and the sink hold a
reply until the VAD decides, then keep or drop it."""

import queue
import threading
import time

import numpy as np
import pytest

from conversation.chat import Chat
from conversation.session import Session
from conversation.turn import Turn
from LLM.answer_loop import answer_transcript
from tests.test_audio_sink import ListSink
from utils.messages import EndOfResponse, LLMSentence, Transcript, TTSAudio

pytestmark = pytest.mark.timing


def decide_later(action, delay_s: float = 0.1) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay_s), action()))
    thread.start()
    return thread


def make_sink():
    should_listen = threading.Event()
    sink = ListSink(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs={"should_listen": should_listen})
    return sink, should_listen


def test_a_plain_turn_is_decided_and_a_speculative_one_is_not():
    assert Turn().decided and not Turn().stale
    turn = Turn(speculative=True)
    assert not turn.decided
    turn.confirm()
    assert turn.decided and not turn.stale and "end_of_turn" in turn.marks


def test_the_sink_holds_speculative_audio_until_the_turn_is_confirmed():
    sink, should_listen = make_sink()
    turn = Turn(speculative=True)
    thread = decide_later(turn.confirm)
    began = time.perf_counter()
    list(sink.process(TTSAudio(np.ones(160, np.int16), 16000, "Paris.", turn)))
    assert time.perf_counter() - began >= 0.09  # it waited for the VAD
    assert len(sink.played) == 1 and turn.marks["first_audio_out"] >= turn.marks["end_of_turn"]
    list(sink.process(EndOfResponse(turn)))
    assert should_listen.is_set()
    thread.join()


def test_the_sink_drops_audio_of_a_cancelled_turn_and_keeps_the_floor_closed():
    sink, should_listen = make_sink()
    turn = Turn(speculative=True)
    thread = decide_later(turn.cancel)
    list(sink.process(TTSAudio(np.ones(160, np.int16), 16000, "Paris.", turn)))
    list(sink.process(EndOfResponse(turn)))
    assert sink.played == [] and sink.finished == [] and not should_listen.is_set()
    thread.join()


def test_the_sink_stops_waiting_when_the_client_leaves():
    sink, _ = make_sink()
    session = Session()
    turn = Turn(speculative=True, session=session)
    thread = decide_later(session.close)
    list(sink.process(TTSAudio(np.ones(160, np.int16), 16000, "Paris.", turn)))
    assert sink.played == []
    thread.join()


def answer(turn: Turn, chat: Chat, pieces: list[str], on_piece=None) -> list:
    def generate(messages):
        for index, piece in enumerate(pieces):
            if on_piece:
                on_piece(index)
            yield piece

    return list(answer_transcript(Transcript("Capital of France?", "en", turn), chat, generate, threading.Event()))


def test_a_confirmed_speculative_reply_enters_the_conversation():
    chat = Chat(size=2)
    turn = Turn(speculative=True)
    thread = decide_later(turn.confirm)
    out = answer(turn, chat, ["Paris is", " the capital.", " It is big."])
    assert [m.text for m in out if isinstance(m, LLMSentence)] == ["Paris is the capital.", "It is big."]
    assert isinstance(out[-1], EndOfResponse)
    assert [m["role"] for m in chat.messages()] == ["user", "assistant"]
    thread.join()


def test_a_cancelled_speculative_reply_stops_and_leaves_no_trace_in_the_chat():
    chat = Chat(size=2)
    turn = Turn(speculative=True)
    seen = []
    out = answer(
        turn, chat, ["Paris", " is", " the", " capital."], lambda i: seen.append(i) or (i == 1 and turn.cancel())
    )
    assert not any(isinstance(m, EndOfResponse) for m in out)
    assert seen == [0, 1]  # generation stopped at the next piece
    assert chat.messages() == []


def test_a_cancelled_speculative_turn_takes_no_turn_number():
    session = Session()
    before = Turn(session=session)
    before.confirm()
    cancelled = Turn(speculative=True, session=session)
    cancelled.cancel()
    confirmed_later = Turn(speculative=True, session=session)
    after = Turn(session=session)
    after.confirm()
    assert cancelled.number == 0 and confirmed_later.number == 0
    assert after.number == before.number + 1  # no gap for the cancelled one
    confirmed_later.confirm()
    assert confirmed_later.number == after.number + 1


def test_a_pause_inside_a_turn_is_not_heard_as_a_turn_of_its_own(stt_handler, caplog):
    """The real VAD speculates on a 200 ms pause between two questions and the
    real STT transcribes the speech so far; speech resumes, so that transcript
    is not a turn: it is not logged as heard, takes no number, and the one
    turn heard says how many early replies were dropped."""
    import logging

    from audio.pcm import load_audio
    from conversation.session import Session
    from tests.conftest import QUESTIONS
    from utils.messages import AudioChunk, SpeechSegment
    from VAD.vad_handler import VADHandler

    caplog.set_level(logging.DEBUG, logger="STT")
    vad = VADHandler(
        threading.Event(), queue.Queue(), queue.Queue(),
        setup_kwargs={"should_listen": threading.Event(), "session": Session(), "speculative_stt_ms": 50,
                      "speculative_reply": True},
    )  # fmt: skip
    first = load_audio(QUESTIONS / "q01.wav")[:-5000]  # the file ends in 350 ms of silence
    speech = np.concatenate(
        [first, np.zeros(3200, np.int16), load_audio(QUESTIONS / "q03.wav"), np.zeros(16000, np.int16)]
    )
    segments, turns = [], []
    for start in range(0, speech.size, 512):
        for segment in vad.process(AudioChunk(speech[start : start + 512])):
            assert isinstance(segment, SpeechSegment)
            segments.append(segment)
            for out in stt_handler.process(segment):  # the STT sees it at once, as in the pipeline
                turns.append(out.turn)
    speculative = [s for s in segments if s.provisional and s.turn is not None]
    assert speculative and speculative[0].turn.cancelled, "the pause was speculated on and then cancelled"
    final = [s for s in segments if not s.provisional]
    assert len(final) == 1 and final[0].turn.number == 1  # the conversation's first turn, no gap
    assert final[0].turn.speculations_cancelled >= 1
    heard = [r.message for r in caplog.records if " heard (" in r.message]
    assert len(heard) == 1 and heard[0].startswith("turn 1 heard"), heard
    assert "leap" in heard[0].lower() and "france" in heard[0].lower()


def test_a_speculative_transcript_finished_after_its_cancel_is_not_heard(caplog):
    """The VAD may cancel a speculative turn while the STT is still on it:
    the transcript then belongs to no turn and is not logged as heard."""
    import logging

    from STT.results import transcript_messages

    caplog.set_level(logging.DEBUG, logger="STT")
    turn = Turn(speculative=True)
    turn.cancel()
    list(transcript_messages(turn, "Give me five", "en"))
    assert not [r for r in caplog.records if " heard (" in r.message and r.levelno >= logging.INFO]
    confirmed = Turn(speculative=True)
    confirmed.confirm()
    list(transcript_messages(confirmed, "Give me five tips", "en"))
    assert [r.message for r in caplog.records if " heard (" in r.message] == [
        f"turn {confirmed.turn_id} heard (en): Give me five tips"
    ]


def test_the_llm_waits_for_the_first_audio_before_going_on():
    """--first_audio_wait_ms: once the first sentence is out (released when
    the second piece arrives), no piece is pulled until the TTS has made its
    audio (here 0.15 s later), or the limit passes."""
    from LLM.answer_loop import ReplyPacing

    turn = Turn()
    pulled = []

    def generate(messages):
        for piece in ["Paris is the capital.", " It is", " big."]:
            pulled.append(time.perf_counter())
            yield piece

    began = time.perf_counter()
    thread = decide_later(lambda: turn.mark("tts_first_audio"), 0.15)
    out = list(
        answer_transcript(
            Transcript("Capital of France?", "en", turn), Chat(), generate, threading.Event(),
            pacing=ReplyPacing(first_audio_wait_ms=2000),
        )
    )  # fmt: skip
    thread.join()
    assert [m.text for m in out if isinstance(m, LLMSentence)] == ["Paris is the capital.", "It is big."]
    assert pulled[2] - began >= 0.1  # the third piece waited for the first audio, not for the 2 s limit
    assert pulled[2] - began < 1.5
