"""The CPU baton on the real models: a pipeline whose stages take turns at the cores still answers.

One realtime server with `--cpu_baton True` (one compute stage at a time,
utils/cpu_baton.py): a session asks a spoken question while a second
session talks without asking for answers, so the STT (following and
transcribing the talker), the LLM (reading the talker's prompt ahead and
answering) and the TTS all want the cores at once.  The question must be
answered, spoken, and about what was asked; the talker's speech transcribed.
"""

from __future__ import annotations

import threading
import time

import pytest

from audio.pcm import load_audio
from benchmarks.contention import listen_only
from benchmarks.server_process import ServerProcess
from connections.realtime.client import RATE, connect, to_pcm24k
from tests.conftest import HUMAN, QUESTIONS, heard_word
from tests.test_realtime import transcribe

pytestmark = pytest.mark.timing


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = ServerProcess("realtime", tmp_path_factory.mktemp("baton"), "--cpu_baton", "True")
    yield running
    assert running.stop() == 0


def talk_without_answers(port: int, done: threading.Event, transcripts: list[str]) -> None:
    """A second session that speaks a recorded announcement and asks for no answer."""
    conversation = connect(port)
    try:
        listen_only(conversation)
        announcement = load_audio(HUMAN / "asterisk_en" / "queue-periodic-announce.wav")
        conversation.speak(to_pcm24k(announcement, 16000), silence_s=1.5)
        heard = conversation.wait_for("conversation.item.input_audio_transcription.completed", timeout=120)
        transcripts.append(heard[0].event.transcript)
    finally:
        done.set()
        conversation.close()


def test_a_spoken_question_is_answered_while_another_session_talks(server, stt_handler):
    talked, transcripts = threading.Event(), []
    talker = threading.Thread(target=talk_without_answers, args=(server.port, talked, transcripts), daemon=True)
    talker.start()
    conversation = connect(server.port)
    try:
        conversation.wait_for("session.created", timeout=20)
        conversation.speak(to_pcm24k(load_audio(QUESTIONS / "q01.wav"), 16000), silence_s=1.5)
        conversation.wait_for("response.done", timeout=120)
        heard = conversation.of("conversation.item.input_audio_transcription.completed")[0].transcript.lower()
        assert "capital" in heard and "france" in heard, heard
        done = conversation.of("response.done")[0].response
        assert done.status == "completed", done
        audio = conversation.reply_audio()
        assert audio.size > RATE * 0.5
        assert heard_word(transcribe(stt_handler, audio), "paris")
    finally:
        conversation.close()
    assert talked.wait(150)
    talker.join(10)
    assert transcripts and len(transcripts[0].split()) >= 5, transcripts  # the talker was transcribed too
    # A turn's metrics are logged once its reply has played out (as the server reckons a client's
    # playback), which on a busy machine can be after the client has left: wait for them.
    answered = []
    deadline = time.monotonic() + 60
    while not answered and time.monotonic() < deadline:
        answered = [turn for turn in server.turns() if turn.get("reply")]
        time.sleep(0.1)
    assert answered and answered[0]["llm_tokens"] > 1 and answered[0]["llm_first_token_ms"] is not None
    assert "Traceback" not in server.log.read_text()
