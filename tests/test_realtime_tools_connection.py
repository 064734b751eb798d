"""Function calling in one realtime connection, without models: what a client declares,
the call going out as the API's events, and the output coming back into the pipeline.
Events are read back through the `openai` SDK's own server-event types; the whole path on
real models and the SDKs is tests/test_realtime_tools.py."""

from __future__ import annotations

import json
import time

from tests.test_realtime_connection import Harness, committed_turn
from utils.messages import CreateResponse, SessionUpdated, ToolResult

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get today's weather forecast for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def send(harness: Harness, event: dict) -> None:
    harness.loop.call_soon_threadsafe(harness.connection.receive, json.dumps(event))


def configure(harness: Harness, **session) -> None:
    """A session.update, applied before the test drives the connection from its own thread."""
    count = harness.types().count("session.updated")
    send(harness, {"type": "session.update", "session": {"type": "realtime", **session}})
    deadline = time.monotonic() + 5
    while harness.types().count("session.updated") == count and time.monotonic() < deadline:
        pass


def next_message(harness: Harness):
    """What the connection put into the pipeline next, past the sessions' updates."""
    while True:
        message = harness.pipeline.get(timeout=2)
        if not isinstance(message, SessionUpdated):
            return message


def updates_only(harness: Harness) -> bool:
    """Whether the pipeline holds nothing but session updates."""
    while not harness.pipeline.empty():
        if not isinstance(harness.pipeline.get_nowait(), SessionUpdated):
            return False
    return True


def last(harness: Harness, kind: str):
    return [event for event in harness.events() if event.type == kind][-1]


def test_session_tools_and_tool_choice_are_kept_and_shown():
    harness = Harness()
    try:
        send(harness, {"type": "session.update", "session": {"type": "realtime", "tools": [WEATHER],
                                                                "tool_choice": "required"}})  # fmt: skip
        session = last(harness, "session.updated").session
        assert [tool.name for tool in session.tools] == ["get_weather"]
        assert session.tool_choice == "required"
        assert harness.connection.session.settings.tools == [WEATHER]
        update = harness.pipeline.get(timeout=2)  # the LLM gets to prepare the new tools' prompt
        assert isinstance(update, SessionUpdated) and update.session is harness.connection.session
        send(harness, {"type": "session.update", "session": {"type": "realtime", "tool_choice": {
            "type": "function", "name": "get_weather"}}})  # fmt: skip
        assert last(harness, "session.updated").session.tool_choice.name == "get_weather"
        assert "error" not in harness.types()
    finally:
        harness.close()


def test_a_bad_tool_or_choice_is_one_error_naming_it_and_the_rest_applies():
    harness = Harness()
    try:
        bad = {**WEATHER, "parameters": {"type": "object", "properties": {"city": {"type": "strin"}}}}
        send(harness, {"type": "session.update", "session": {"type": "realtime", "tools": [bad],
                                                                "instructions": "Be brief."}})  # fmt: skip
        error = last(harness, "error").error
        assert error.code == "invalid_value" and "session.tools[0]" in error.message and "get_weather" in error.message
        assert harness.connection.session.settings.tools == []  # refused whole
        assert harness.connection.session.settings.instructions == "Be brief."  # the rest applied
        assert last(harness, "session.updated").session.instructions == "Be brief."
        send(harness, {"type": "session.update", "session": {"type": "realtime", "tool_choice": {
            "type": "function", "name": "no_such_tool"}}})  # fmt: skip
        error = last(harness, "error").error
        assert "no_such_tool" in error.message and error.param == "session.tool_choice"
        send(harness, {"type": "session.update", "session": {"type": "realtime", "tools": [WEATHER, WEATHER]}})
        assert "unique" in last(harness, "error").error.message
    finally:
        harness.close()


def test_the_agents_sdk_default_session_update_is_accepted_whole():
    """What @openai/agents-realtime sends by default (its DEFAULT_OPENAI_REALTIME_SESSION_CONFIG
    plus an agent's instructions and one tool): semantic_vad, a transcription model, no error."""
    harness = Harness()
    try:
        send(harness, {"type": "session.update", "session": {
            "type": "realtime", "instructions": "You are helpful.", "model": "gpt-realtime-2.1",
            "output_modalities": ["audio"],
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": 24000}, "noise_reduction": None,
                          "transcription": {"model": "gpt-4o-mini-transcribe"},
                          "turn_detection": {"type": "semantic_vad"}},
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "speed": 1},
            },
            "tools": [WEATHER],
        }})  # fmt: skip
        assert "error" not in harness.types(), [e for e in harness.events() if e.type == "error"]
        session = last(harness, "session.updated").session
        assert session.audio.input.turn_detection.type == "semantic_vad"
        assert session.audio.input.turn_detection.eagerness == "auto"
    finally:
        harness.close()


def test_semantic_vad_eagerness_sets_the_end_of_turn_waits_of_the_session():
    harness = Harness()
    try:
        waits = {}
        for eagerness in ("low", "medium", "high"):
            send(harness, {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
                "turn_detection": {"type": "semantic_vad", "eagerness": eagerness}}}}})  # fmt: skip
            harness.events()
            detection = harness.connection.session.settings.turn_detection
            assert detection.eagerness == eagerness
            assert detection.silence_duration_ms is None  # the evidence decides, at the eagerness's bar
            waits[eagerness] = detection.unfinished_silence_ms or 900
        assert waits["low"] > waits["medium"] > waits["high"]
        assert last(harness, "session.updated").session.audio.input.turn_detection.eagerness == "high"
    finally:
        harness.close()


def test_unsupported_fields_are_named_in_one_error_and_the_rest_applies():
    harness = Harness()
    try:
        send(harness, {"type": "session.update", "session": {
            "type": "realtime", "tracing": "auto", "include": ["item.input_audio_transcription.logprobs"],
            "instructions": "Short answers.",
            "audio": {"input": {"noise_reduction": {"type": "near_field"}}}}})  # fmt: skip
        errors = [e for e in harness.events() if e.type == "error"]
        assert len(errors) == 1
        assert "session.include" in errors[0].error.message and "noise_reduction" in errors[0].error.message
        assert "tracing" not in errors[0].error.message  # accepted: the Agents SDK sends it by default
        assert harness.connection.session.settings.instructions == "Short answers."
    finally:
        harness.close()


def test_fields_the_sdks_types_refuse_are_named_and_the_rest_of_the_update_applies():
    """A value the SDK's own types refuse (a modality that does not exist, a
    tool_choice of no known form) threw the whole session.update away:
    instructions sent beside it were lost, and no session.updated came."""
    harness = Harness()
    try:
        send(harness, {"type": "session.update", "event_id": "u1", "session": {
            "type": "realtime", "output_modalities": ["video"], "tool_choice": "bogus",
            "instructions": "MARKER"}})  # fmt: skip
        events = harness.events_until(lambda sent: any(e.type == "session.updated" for e in sent))
        (error,) = [e for e in events if e.type == "error"]
        message = error.error.message
        assert "session.output_modalities.0: Input should be 'text' or 'audio'" in message, message
        assert "session.tool_choice:" in message and "literal[" not in message, message
        assert error.error.event_id == "u1"
        assert harness.connection.session.settings.instructions == "MARKER"
        (updated,) = [e for e in events if e.type == "session.updated"]
        assert updated.session.instructions == "MARKER" and updated.session.output_modalities == ["audio"]
        # One wrong value deep in `audio` leaves the rest of `audio` applied (the format), and the
        # error is about the member of the union the client sent, not "not a server_vad".
        send(harness, {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "format": {"type": "audio/pcmu"}, "turn_detection": {"type": "semantic_vad", "eagerness": "fast"}}}}})
        events = harness.events_until(lambda sent: [e.type for e in sent].count("session.updated") == 2)
        error = [e for e in events if e.type == "error"][-1]
        assert error.error.message.startswith("session.audio.input.turn_detection.eagerness: Input should be 'low'")
        updated = [e for e in events if e.type == "session.updated"][-1]
        assert updated.session.audio.input.format.type == "audio/pcmu"
        assert updated.session.audio.input.turn_detection.type == "semantic_vad"
    finally:
        harness.close()


def test_a_call_goes_out_as_a_function_call_item_and_its_output_comes_back():
    harness = Harness()
    connection = harness.connection
    try:
        configure(harness, tools=[WEATHER])
        turn = committed_turn(harness, "Will it rain in London today?")
        connection.function_call(turn, "call_abc", "get_weather", '{"city": "London"}')
        connection.response_done(turn)
        events = harness.events()
        types = [e.type for e in events]
        start = types.index("response.created")
        assert types[start:] == [
            "response.created", "response.output_item.added", "conversation.item.added",
            "response.function_call_arguments.delta", "response.function_call_arguments.done",
            "response.output_item.done", "conversation.item.done", "response.done",
        ]  # fmt: skip
        added = events[start + 1].item
        assert added.type == "function_call" and added.status == "in_progress"  # the Agents SDK runs it on done
        done = events[types.index("response.function_call_arguments.done")]
        assert (done.call_id, done.name, json.loads(done.arguments)) == ("call_abc", "get_weather", {"city": "London"})
        response = events[-1].response
        assert response.status == "completed" and [item.type for item in response.output] == ["function_call"]
        assert response.output[0].status == "completed" and response.output[0].call_id == "call_abc"

        send(harness, {"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": "call_abc", "output": '{"forecast": "rain"}'}})  # fmt: skip
        item = last(harness, "conversation.item.done").item
        assert item.type == "function_call_output" and item.call_id == "call_abc"
        result = next_message(harness)
        assert isinstance(result, ToolResult) and result.call_id == "call_abc" and not result.turn.respond
        send(harness, {"type": "response.create"})
        assert isinstance(next_message(harness), CreateResponse)
    finally:
        harness.close()


def test_words_before_a_call_are_the_first_output_item_and_the_call_the_second():
    harness = Harness()
    connection = harness.connection
    try:
        configure(harness, tools=[WEATHER], output_modalities=["text"])
        turn = committed_turn(harness, "Will it rain in London today?")
        connection.response_text(turn, "Let me check.")
        connection.function_call(turn, "call_1", "get_weather", '{"city": "London"}')
        connection.response_done(turn)
        events = harness.events()
        call_added = next(
            e for e in events if e.type == "response.output_item.added" and e.item.type == "function_call"
        )
        assert call_added.output_index == 1
        output = events[-1].response.output
        assert [item.type for item in output] == ["message", "function_call"]
        assert output[0].content[0].text == "Let me check."
    finally:
        harness.close()


def test_bad_function_outputs_get_an_error_and_the_session_goes_on():
    harness = Harness()
    connection = harness.connection
    try:
        configure(harness, tools=[WEATHER])
        turn = committed_turn(harness)
        connection.function_call(turn, "call_known", "get_weather", '{"city": "Paris"}')
        connection.response_done(turn)
        send(harness, {"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": "call_unknown", "output": "x"}})  # fmt: skip
        error = last(harness, "error").error
        assert "call_unknown" in error.message and error.param == "item.call_id"
        send(harness, {"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": "call_known", "output": "x" * (64 * 1024 + 1)}})  # fmt: skip
        error = last(harness, "error").error
        assert "64 KB" in error.message and error.param == "item.output"
        assert updates_only(harness)  # neither reached the conversation
        send(harness, {"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": "call_known", "output": "sunny"}})  # fmt: skip
        assert next_message(harness).output == "sunny"
    finally:
        harness.close()


def test_a_response_create_may_bring_its_own_tools_and_choice():
    harness = Harness()
    try:
        send(harness, {"type": "response.create", "response": {"tools": [WEATHER], "tool_choice": "required"}})
        message = next_message(harness)
        assert isinstance(message, CreateResponse)
        assert message.turn.tools == [WEATHER] and message.turn.tool_choice == "required"
        harness.connection.session.active_turn = None
        send(harness, {"type": "response.create", "response": {"tool_choice": {"type": "function", "name": "nope"}}})
        assert "nope" in last(harness, "error").error.message
    finally:
        harness.close()
