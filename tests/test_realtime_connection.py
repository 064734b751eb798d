"""One realtime connection's translation between pipeline events and API events, without models.

The connection is driven as the stage threads drive it (observer calls) and
its outgoing events are read back parsed by the `openai` SDK's own server
event types; the server-level behaviour is tested through the SDK in
tests/test_realtime.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import queue
import threading
import time
from collections.abc import Callable

import numpy as np
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from audio.pcm import load_audio, split_chunks
from connections.realtime.connection import RealtimeConnection, RealtimeOptions
from conversation.session import TurnDetection
from conversation.turn import Turn
from tests.conftest import QUESTIONS, make_handler
from utils.messages import AudioChunk, TTSAudio
from VAD.vad_handler import VADHandler

SERVER_EVENTS = TypeAdapter(RealtimeServerEvent)


class Harness:
    """A connection on a private event loop; `events()` returns what it sent."""

    def __init__(self, playback_lead_ms: int = 250) -> None:
        self.loop = asyncio.new_event_loop()
        self.sent: list[str] = []
        self.sent_log: list[tuple[float, str]] = []  # when each was sent (one list: read while the writer sends)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.pipeline: queue.Queue = queue.Queue()

        async def send_text(text: str) -> None:
            self.sent_log.append((time.perf_counter(), text))
            self.sent.append(text)

        async def make() -> RealtimeConnection:
            connection = RealtimeConnection(
                send_text, asyncio.get_running_loop(), self.pipeline,
                RealtimeOptions(model="s2s", pipeline_rate=16000, defaults=TurnDetection(0.3, 300, 500),
                                playback_lead_ms=playback_lead_ms),
            )  # fmt: skip
            asyncio.get_running_loop().create_task(connection.writer())
            return connection

        self.connection = asyncio.run_coroutine_threadsafe(make(), self.loop).result(5)

    def events(self, settle_s: float = 0.2) -> list:
        time.sleep(settle_s)
        return [SERVER_EVENTS.validate_python(json.loads(text)) for text in self.sent]

    def events_until(self, done: Callable[[list], bool], timeout_s: float = 10.0) -> list:
        """What it sent, once `done(events)` holds (a busy machine's event
        loop may take longer than a fixed settle)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            events = self.events(settle_s=0.05)
            if done(events):
                return events
        raise AssertionError(f"not sent in {timeout_s} s; sent: {[e.type for e in self.events(0)]}")

    def types(self) -> list[str]:
        return [event.type for event in self.events()]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.connection.close)
        time.sleep(0.1)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(2)


def committed_turn(harness: Harness, transcript: str = "What is the capital of France?") -> Turn:
    connection = harness.connection
    turn = Turn(session=connection.session, transcript=transcript)
    connection.speech_started(connection.session, 100)
    connection.speech_stopped(connection.session, 1800)
    connection.input_committed(turn)
    turn.mark("transcript_ready")
    connection.transcript_ready(turn)
    return turn


def test_a_failed_turn_ends_with_an_error_event_and_a_failed_response():
    harness = Harness()
    try:
        turn = committed_turn(harness)
        turn.error = "LlamaCppLanguageModelHandler: out of memory"
        harness.connection.response_done(turn)
        events = harness.events()
        error = next(e for e in events if e.type == "error")
        assert "out of memory" in error.error.message and error.error.type == "server_error"
        done = next(e for e in events if e.type == "response.done").response
        assert done.status == "failed" and done.status_details.error.message
    finally:
        harness.close()


def test_a_reply_goes_out_as_created_deltas_and_done_with_its_transcript():
    harness = Harness()
    try:
        turn = committed_turn(harness)
        for text in ("The capital of France is Paris.", "It is big."):
            harness.connection.response_audio(TTSAudio(np.ones(4800, np.int16), 24000, text, turn))
        turn.reply_sentences = ["The capital of France is Paris.", "It is big."]
        harness.connection.response_done(turn)
        events = harness.events()
        types = [e.type for e in events]
        assert types.index("conversation.item.input_audio_transcription.completed") < types.index("response.created")
        deltas = "".join(e.delta for e in events if e.type == "response.output_audio_transcript.delta")
        assert deltas == "The capital of France is Paris. It is big."
        audio = b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta")
        assert len(audio) >= 2 * 9000  # 2 x 4800 samples at 24 kHz, less the resampler's latency
        done = events[-1]
        assert done.type == "response.done" and done.response.status == "completed"
        assert done.response.output[0].content[0].transcript == deltas
    finally:
        harness.close()


def test_an_item_is_retrieved_as_it_stands_and_a_truncated_reply_keeps_what_was_heard():
    """The Agents SDK asks for each user item once it is transcribed and each
    truncated item (conversation.item.retrieve): it gets the item as the
    conversation holds it now; an unknown item is an error naming it."""
    harness = Harness()
    try:
        connection = harness.connection
        turn = committed_turn(harness)
        for text in ("The capital of France is Paris.", "It is big."):
            turn.playback.add(text, 24000, 24000, time.perf_counter())  # what the sink records
            connection.response_audio(TTSAudio(np.ones(24000, np.int16), 24000, text, turn))
        turn.reply_sentences = ["The capital of France is Paris.", "It is big."]
        connection.response_done(turn)
        events = harness.events(settle_s=2.2)  # paced: 2 s of reply go out in about 1.75 s
        user = next(e for e in events if e.type == "conversation.item.done" and e.item.role == "user").item
        reply = next(e for e in events if e.type == "response.done").response.output[0]
        connection.receive(json.dumps({"type": "conversation.item.retrieve", "item_id": user.id}))
        connection.receive(
            json.dumps({"type": "conversation.item.truncate", "item_id": reply.id, "content_index": 0,
                        "audio_end_ms": 1000})
        )  # fmt: skip
        connection.receive(json.dumps({"type": "conversation.item.retrieve", "item_id": reply.id}))
        connection.receive(json.dumps({"type": "conversation.item.retrieve", "item_id": "item_nope", "event_id": "e1"}))
        # The error goes out of band: before retrieved items still queued on a busy machine.
        events = harness.events_until(lambda sent: [e.type for e in sent].count("conversation.item.retrieved") == 2
                                      and any(e.type == "error" for e in sent))  # fmt: skip
        retrieved = [e.item for e in events if e.type == "conversation.item.retrieved"]
        assert [item.id for item in retrieved] == [user.id, reply.id]
        assert retrieved[0].content[0].transcript == "What is the capital of France?"
        assert retrieved[1].content[0].transcript == "The capital of France is Paris."  # one second heard
        (error,) = [e for e in events if e.type == "error"]
        assert "item_nope" in error.error.message and error.error.event_id == "e1"
    finally:
        harness.close()


def test_an_early_transcript_waits_for_its_commit_and_a_withdrawn_turn_is_deleted():
    harness = Harness()
    connection = harness.connection
    try:
        turn = Turn(session=connection.session, transcript="What is the capital city of", speculative=True)
        turn.mark("transcript_ready")
        connection.transcript_ready(turn)  # a speculation: not committed yet
        assert "conversation.item.input_audio_transcription.completed" not in harness.types()
        connection.input_committed(turn)
        types = harness.types()
        assert types.index("input_audio_buffer.committed") < types.index(
            "conversation.item.input_audio_transcription.completed"
        )
        item_id = next(e for e in harness.events() if e.type == "input_audio_buffer.committed").item_id
        connection.turn_withdrawn(turn)  # the speaker went on: this item is not a turn after all
        deleted = [e for e in harness.events() if e.type == "conversation.item.deleted"]
        assert [e.item_id for e in deleted] == [item_id]
    finally:
        harness.close()


def test_words_settled_while_the_user_speaks_go_out_as_transcription_deltas_of_the_announced_item():
    harness = Harness()
    connection, session = harness.connection, harness.connection.session
    try:
        connection.transcript_progress(session, "What")  # no speech announced: nowhere to put it
        connection.speech_started(session, 100)
        connection.transcript_progress(session, "What is")
        connection.transcript_progress(session, "What is")  # nothing new
        connection.transcript_progress(session, "What is the capital of")
        connection.transcript_progress(session, "What was")  # a revision: left to the completed transcript
        connection.speech_stopped(session, 2500)
        turn = Turn(session=session, transcript="What is the capital of France?")
        connection.input_committed(turn)
        connection.transcript_progress(session, "What is the capital of France")  # committed: too late
        turn.mark("transcript_ready")
        connection.transcript_ready(turn)
        events = harness.events()
        started = next(e for e in events if e.type == "input_audio_buffer.speech_started")
        deltas = [e for e in events if e.type == "conversation.item.input_audio_transcription.delta"]
        assert [e.delta for e in deltas] == ["What is", " the capital of"]
        assert {e.item_id for e in deltas} == {started.item_id}
        assert all(e.content_index == 0 for e in deltas)
        types = [e.type for e in events]
        assert types.index("conversation.item.input_audio_transcription.delta") < types.index(
            "input_audio_buffer.speech_stopped"
        )
        completed = next(e for e in events if e.type == "conversation.item.input_audio_transcription.completed")
        assert completed.item_id == started.item_id and completed.transcript == "What is the capital of France?"
        connection.speech_started(session, 4000)  # the next utterance starts its captions afresh
        connection.transcript_progress(session, "And Spain")
        last = harness.events()[-1]
        assert last.type == "conversation.item.input_audio_transcription.delta" and last.delta == "And Spain"
        assert last.item_id != started.item_id
    finally:
        harness.close()


def test_interrupt_response_false_keeps_the_reply_going():
    """Server turn detection still hears the user, but the reply is not cut."""
    vad = make_handler(VADHandler, should_listen=threading.Event())
    for interrupt in (True, False):
        harness = Harness()
        try:
            session = harness.connection.session
            session.settings.turn_detection = TurnDetection(interrupt_response=interrupt)
            turn = Turn(session=session)
            session.active_turn = turn
            assert turn.begin_playback()
            turn.playback.add("A very long reply that goes on and on.", 16000 * 30, 16000)
            for piece in split_chunks(load_audio(QUESTIONS / "q01.wav"), 512):
                list(vad.process(AudioChunk(samples=piece, session=session)))
            assert turn.interrupted is interrupt and turn.stale is interrupt
            assert "input_audio_buffer.speech_started" in harness.types()
        finally:
            harness.close()


def test_a_user_item_is_added_before_it_is_done_whichever_thread_runs_first(monkeypatch):
    """The VAD thread commits the item (item.added), the STT thread completes
    it (item.done).  Here the STT thread's call comes exactly between the
    VAD thread publishing the item's id and queueing its events: item.added
    must still go out first."""
    import connections.realtime.connection as module

    harness = Harness()
    connection = harness.connection
    turn = Turn(session=connection.session, transcript="What is the capital of France?")
    real_committed = module.ev.committed

    def committed_then_stt_runs(item_id, previous):
        stt = threading.Thread(target=connection.transcript_ready, args=(turn,))
        stt.start()
        stt.join(0.5)  # it finishes here unless the item's events are still being queued
        return real_committed(item_id, previous)

    monkeypatch.setattr(module.ev, "committed", committed_then_stt_runs)
    try:
        connection.speech_started(connection.session, 100)
        connection.speech_stopped(connection.session, 1800)
        connection.input_committed(turn)
        types = harness.types()
        assert types.index("conversation.item.added") < types.index("conversation.item.done"), types
        assert types.count("conversation.item.done") == 1
    finally:
        harness.close()


def test_the_transcript_and_the_reply_carry_their_language():
    """The completed transcription names the language it was heard in
    (`languages`), response.done the reply's language and voice (`metadata`)."""
    harness = Harness()
    try:
        turn = committed_turn(harness, "Wat is de hoofdstad van Frankrijk?")
        turn.language, turn.reply_language, turn.voice = "nl", "nl", "espeak-ng:nl"
        harness.connection.transcript_ready(turn)
        harness.connection.response_audio(TTSAudio(np.ones(4800, np.int16), 24000, "Parijs.", turn))
        turn.reply_sentences = ["Parijs."]
        harness.connection.response_done(turn)
        events = harness.events()
        completed = [e for e in events if e.type == "conversation.item.input_audio_transcription.completed"]
        assert [language.code for language in completed[-1].languages] == ["nl"]
        done = events[-1]
        assert done.type == "response.done" and done.response.metadata == {"language": "nl", "voice": "espeak-ng:nl"}
    finally:
        harness.close()


def test_session_update_fixes_or_narrows_the_language_and_refuses_unknown_codes():
    from openai.types.realtime import SessionUpdatedEvent

    harness = Harness()
    try:
        settings = harness.connection.session.settings

        def update(transcription) -> None:
            session = {"type": "realtime", "audio": {"input": {"transcription": transcription}}}
            harness.connection.receive(json.dumps({"type": "session.update", "session": session}))

        update({"language": "nl"})
        assert settings.language == "nl" and settings.languages is None
        update({"language": "auto", "languages": ["en", "cs"]})
        assert settings.language == "auto" and settings.languages == ("en", "cs")
        update({"language": "NL"})
        update({"languages": ["en", "xx"]})
        assert settings.language == "auto" and settings.languages == ("en", "cs")  # refused: nothing changed
        updated = [e for e in harness.events() if isinstance(e, SessionUpdatedEvent)]
        assert updated[1].session.audio.input.transcription.languages == ["en", "cs"]
        errors = [e.error for e in harness.events() if e.type == "error"]
        assert [error.param for error in errors] == [
            "session.audio.input.transcription.language",
            "session.audio.input.transcription.languages",
        ]
        assert "did you mean 'nl'" in errors[0].message
        update(None)
        assert settings.language is None and settings.languages is None
    finally:
        harness.close()


def audio_sends(harness: Harness) -> list[tuple[float, int]]:
    """When each reply audio delta was sent, and its samples."""
    return [
        (at, len(base64.b64decode(json.loads(text)["delta"])) // 2)
        for at, text in list(harness.sent_log)
        if json.loads(text)["type"] == "response.output_audio.delta"
    ]


def say(harness: Harness, turn: Turn, seconds: float, text: str = "A long sentence.") -> None:
    """`seconds` of the turn's reply audio (24 kHz), as the sink hands it over."""
    harness.connection.response_audio(TTSAudio(np.ones(int(seconds * 24000), np.int16), 24000, text, turn))


def test_reply_audio_goes_out_no_further_ahead_of_the_client_than_the_lead():
    """Three seconds of reply in one piece: each delta leaves only once the
    audio before it has played to within the lead (250 ms), so the whole
    takes about its length less the lead, and a client that stops being
    sent audio falls silent within the lead."""
    harness = Harness(playback_lead_ms=250)
    try:
        turn = committed_turn(harness)
        say(harness, turn, 3, "A long sentence.")
        time.sleep(3.2)
        sends = audio_sends(harness)
        start = sends[0][0]
        played = 0.0  # seconds of audio sent before each delta
        for at, samples in sends:
            assert at - start >= played - 0.25 - 0.03, (at - start, played)
            played += samples / 24000
        assert played > 2.8 and sends[-1][0] - start > 2.3
    finally:
        harness.close()


def test_a_paused_reply_is_held_back_and_a_cut_one_stops_at_once():
    harness = Harness(playback_lead_ms=250)
    try:
        turn = committed_turn(harness)
        connection = harness.connection
        assert connection.session.settings.pause_playback  # paced: a sound over the reply holds it back
        turn.playback.pause(0.6)  # a sound over the reply is being judged
        say(harness, turn, 1, "One.")
        time.sleep(0.3)
        assert audio_sends(harness) == []
        time.sleep(0.5)  # the pause ran out (a backchannel would resume it sooner): the reply plays on
        assert len(audio_sends(harness)) >= 1
        second = Turn(session=connection.session, transcript="Tell me more.")
        say(harness, second, 5, "A long one.")
        time.sleep(0.8)
        second.cancel()  # interrupted: nothing more of it goes out
        time.sleep(0.1)
        sent = len(audio_sends(harness))
        connection.response_done(turn)
        time.sleep(0.6)
        assert len(audio_sends(harness)) == sent
        assert "response.done" in harness.types()  # the events behind the cut audio still go out
    finally:
        harness.close()


def test_with_no_lead_reply_audio_goes_out_as_fast_as_it_is_made():
    harness = Harness(playback_lead_ms=0)
    try:
        turn = committed_turn(harness)
        assert not harness.connection.session.settings.pause_playback
        say(harness, turn, 3, "A long sentence.")
        time.sleep(0.3)
        sends = audio_sends(harness)
        assert sum(samples for _, samples in sends) > 2.8 * 24000
        assert sends[-1][0] - sends[0][0] < 0.2
    finally:
        harness.close()


def test_a_reply_cut_after_all_of_it_was_made_sends_no_more_audio():
    """The TTS may have made the whole reply (its end reached the sink) while
    the client still has seconds to hear: an interruption then, or the
    client's response.cancel, stops its paced audio at once, and what comes
    after it (speech_started) is not held behind that audio."""
    harness = Harness(playback_lead_ms=250)
    try:
        turn = committed_turn(harness)
        connection = harness.connection
        say(harness, turn, 5, "A long one.")
        turn.mark("last_audio_out")  # all of it made and handed over: its end follows its audio
        turn.reply_sentences = ["A long one."]
        connection.response_done(turn)
        time.sleep(0.8)
        connection.session.record_heard(turn, "A long")  # the user spoke over it
        connection.speech_started(connection.session, 4000)
        time.sleep(0.3)
        sent = len(audio_sends(harness))
        assert sent < 10  # well short of the 25 deltas of 5 s
        time.sleep(0.5)
        assert len(audio_sends(harness)) == sent
        # The client hears of the interruption before the reply's end, while it
        # still plays the reply (a client that has ended a reply does not stop it).
        types = harness.types()
        assert types.index("input_audio_buffer.speech_started") < types.index("response.done")
    finally:
        harness.close()


def test_an_answer_to_the_client_does_not_wait_behind_paced_audio():
    """session.updated (or an error) answers the client now, not after the
    seconds of reply audio still waiting their time."""
    harness = Harness(playback_lead_ms=250)
    try:
        turn = committed_turn(harness)
        connection = harness.connection
        say(harness, turn, 5, "A long one.")
        time.sleep(0.5)
        update = {"type": "session.update", "session": {"type": "realtime", "instructions": "Hi"}}
        connection.receive(json.dumps(update))
        time.sleep(0.3)
        types = [json.loads(text)["type"] for _, text in list(harness.sent_log)]
        assert "session.updated" in types
        assert len(audio_sends(harness)) < 15  # most of the reply's audio is still to go
    finally:
        harness.close()
