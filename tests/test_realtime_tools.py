"""Function calling through the official `openai` SDK, on the real models and a real server.

One realtime server (default stack) serves every test; each test speaks recorded
requests from `../shared/audio/tools/` as an application on the SDK would, runs the
"tool" itself (a canned forecast), and checks the spoken answer by transcribing it.
"""

from __future__ import annotations

import json
import time

import pytest

from audio.pcm import load_audio
from benchmarks.server_process import ServerProcess
from connections.realtime.client import Conversation, connect, to_pcm24k
from tests.conftest import QUESTIONS, SHARED_AUDIO, heard_word
from tests.test_realtime import transcribe

pytestmark = pytest.mark.timing

TOOLS_AUDIO = SHARED_AUDIO / "tools"
TOOLS = json.loads((TOOLS_AUDIO / "tools.json").read_text())
FORECAST = json.dumps({"city": "London", "forecast": "hail", "high_celsius": 9})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = ServerProcess(
        "realtime", tmp_path_factory.mktemp("realtime_tools"), "--max_sessions", "2", "--builtin_tools", "true"
    )
    yield running
    assert running.stop() == 0


def request(name: str) -> bytes:
    return to_pcm24k(load_audio(TOOLS_AUDIO / name), 16000)


def open_session(server, **session) -> Conversation:
    conversation = connect(server.port)
    conversation.wait_for("session.created", timeout=10)
    conversation.send({"type": "session.update", "session": {"type": "realtime", "tools": TOOLS, **session}})
    conversation.wait_for("session.updated", timeout=10)
    return conversation


def calls_of(response) -> list:
    return [item for item in response.output if item.type == "function_call"]


def output_item(call, output: str) -> dict:
    item = {"type": "function_call_output", "call_id": call.call_id, "output": output}
    return {"type": "conversation.item.create", "item": item}


def answer_call(conversation: Conversation, call, output: str) -> object:
    """Send the tool's output and ask for the answer; returns that response."""
    count = len(conversation.of("response.done"))
    conversation.send(output_item(call, output))
    conversation.send({"type": "response.create"})
    return conversation.wait_for("response.done", timeout=90, count=count + 1)[-1].event.response


def test_a_spoken_request_calls_the_tool_and_the_answer_uses_its_output(server, stt_handler):
    conversation = open_session(server)
    try:
        conversation.speak(request("t09.wav"), silence_s=1.5)  # "Will it rain in London today?"
        response = conversation.wait_for("response.done", timeout=90)[0].event.response
        (call,) = calls_of(response)
        assert call.name == "get_weather" and "london" in json.loads(call.arguments)["city"].lower()
        done = conversation.of("response.function_call_arguments.done")[0]
        assert done.call_id == call.call_id and json.loads(done.arguments) == json.loads(call.arguments)
        after = len(conversation.events)
        answer = answer_call(conversation, call, FORECAST)
        assert answer.status == "completed" and answer.output[0].type == "message"
        heard = transcribe(stt_handler, conversation.reply_audio(after))
        assert "hail" in heard, heard
    finally:
        conversation.close()


def test_tool_choice_none_answers_in_words_and_required_always_calls(server):
    conversation = open_session(server, tool_choice="none")
    try:
        conversation.speak(request("t10.wav"), silence_s=1.5)  # "What's the weather like in Madrid?"
        response = conversation.wait_for("response.done", timeout=90)[0].event.response
        assert not calls_of(response) and response.output[0].type == "message"
        assert response.output[0].content[0].transcript
    finally:
        conversation.close()
    conversation = open_session(server, tool_choice="required")
    try:
        conversation.speak(request("t26.wav"), silence_s=1.5)  # "Who painted the Mona Lisa?": no tool fits
        response = conversation.wait_for("response.done", timeout=90)[0].event.response
        (call,) = calls_of(response)
        declared = {tool["name"]: tool for tool in TOOLS}
        assert call.name in declared
        arguments = json.loads(call.arguments)
        assert set(declared[call.name]["parameters"]["required"]) <= set(arguments)
    finally:
        conversation.close()


def test_speech_during_a_call_is_answered_and_the_late_output_too(server, stt_handler):
    """Barge-in during a call: the user talks while the client "runs" the tool, and the
    new question is answered at once (a call never answered blocks nothing); the late
    output is then answered too, from what the tool returned."""
    conversation = open_session(server)
    try:
        conversation.speak(request("t09.wav"), silence_s=1.5)
        (call,) = calls_of(conversation.wait_for("response.done", timeout=90)[0].event.response)
        after = len(conversation.events)
        conversation.speak(to_pcm24k(load_audio(QUESTIONS / "q01.wav"), 16000), silence_s=1.5)  # capital of France
        response = conversation.wait_for("response.done", timeout=90, after=after)[0].event.response
        assert response.status == "completed" and not calls_of(response)
        assert heard_word(transcribe(stt_handler, conversation.reply_audio(after)), "paris")
        after = len(conversation.events)
        answer = answer_call(conversation, call, FORECAST)
        assert answer.status == "completed"
        assert "hail" in transcribe(stt_handler, conversation.reply_audio(after))
    finally:
        conversation.close()


def test_the_answer_to_a_call_can_be_cancelled_and_the_conversation_goes_on(server):
    """The cancelled answer's output stays in the conversation: asked about it, with this
    response's tool_choice "none", the assistant answers from it.  Left to decide ("auto"),
    the assistant looks the forecast up again: the call decision reads the request alone,
    and a question about the forecast asks for one (a fair reply, which would not show what
    the chat kept).  How the 1.5B words the answer depends on the question: of 8 phrasings
    asked after an output never answered in words, 4 read "hail" from it; "What did the
    forecast say?" got "The forecast said it would rain in London today", the first
    question's words ("Will it rain in London today?") copied, not the output."""
    conversation = open_session(server, output_modalities=["text"])
    try:
        conversation.speak(request("t09.wav"), silence_s=1.5)
        (call,) = calls_of(conversation.wait_for("response.done", timeout=90)[0].event.response)
        conversation.send(output_item(call, FORECAST))
        conversation.send({"type": "response.create"})
        conversation.send({"type": "response.cancel"})  # processed in order, before the reply can be done
        done = conversation.wait_for("response.done", timeout=60, count=2)[-1].event.response
        assert done.status == "cancelled" and done.status_details.reason == "client_cancelled"
        time.sleep(0.5)
        conversation.send({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                           "content": [{"type": "input_text", "text": "What was the forecast?"}]}})  # fmt: skip
        conversation.send({"type": "response.create", "response": {"tool_choice": "none"}})
        answer = conversation.wait_for("response.done", timeout=90, count=3)[-1].event.response
        assert answer.status == "completed" and "hail" in answer.output[0].content[0].text.lower()
    finally:
        conversation.close()


def test_a_session_without_tools_of_its_own_gets_the_built_ins_run_by_the_server(server):
    """No session.tools: "What time is it in Tokyo right now?" is answered, in the same
    response, with Tokyo's time from the server's get_time (no call reaches the client)."""
    import datetime
    import zoneinfo

    from tests.test_builtin_tools import spoken_times

    conversation = connect(server.port)
    try:
        conversation.wait_for("session.created", timeout=10)
        asked_at = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Tokyo"))
        conversation.speak(request("t01.wav"), silence_s=1.5)
        response = conversation.wait_for("response.done", timeout=90)[0].event.response
        assert response.status == "completed" and not calls_of(response)
        said = response.output[0].content[0].transcript.lower().replace("-", " ")
        forms = {form.replace("-", " ") for form in spoken_times(asked_at)}
        assert any(form in said for form in forms), (said, sorted(forms))
    finally:
        conversation.close()
