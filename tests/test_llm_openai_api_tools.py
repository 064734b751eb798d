"""Function calling through the open_api backend, against llama-cpp-python's own
OpenAI-compatible server on loopback serving the packaged Qwen2.5-1.5B GGUF (whose chat
template has tools): the offered tools go out as the API's `tools` / `tool_choice`, the
server's `tool_calls` come back as calls, and the call and its output are sent back in
the chat-completions format on the next request, which the model answers from.

The handler has s2s's default system prompt, as a voice assistant runs: with the SmolLM2 tests' "Answer in
one short sentence." the 1.5B, given the output, wrote its call again as a bare JSON object (with the
output's fields merged in), under llama_cpp.server's own template and under the GGUF template rendered
in-process alike; with the default prompt it answered from the output (the server renders the `tool`
message as the template's <tool_response> turn either way)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from arguments_classes.chat_arguments import DEFAULT_SYSTEM_PROMPT
from conversation.session import Session, SessionSettings
from conversation.turn import Turn
from tests.test_llm_openai_api import RecordingProxy, handler_for, recording_proxy, serve_gguf
from utils.messages import CreateResponse, EndOfResponse, LLMSentence, ToolCall, ToolResult, Transcript

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get today's weather forecast for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def qwen_server(tmp_path_factory) -> Iterator[str]:
    with serve_gguf("qwen2.5-1.5b", tmp_path_factory.mktemp("llama-server-qwen")) as url:
        yield url


@pytest.fixture
def qwen_proxy(qwen_server) -> Iterator[RecordingProxy]:
    with recording_proxy(qwen_server) as server:
        yield server


@pytest.mark.parametrize("stream", [True, False])
def test_tools_go_out_and_the_call_comes_back_then_its_output_is_answered(qwen_proxy, stream):
    handler = handler_for(
        qwen_proxy.url, model_name="qwen2.5-1.5b", stream=stream, init_chat_prompt=DEFAULT_SYSTEM_PROMPT
    )
    session = Session(SessionSettings(tools=[WEATHER], tool_choice={"type": "function", "name": "get_weather"}))
    turn = Turn(session=session)
    out = list(handler.process(Transcript("Will it rain in London today?", "en", turn)))
    calls = [m for m in out if isinstance(m, ToolCall)]
    assert len(calls) == 1 and isinstance(out[-1], EndOfResponse), out
    call = calls[0]
    assert call.name == "get_weather" and "london" in json.loads(call.arguments)["city"].lower()
    assert not call.by_server  # the client declared it: the call ends the response
    body = qwen_proxy.posts()[0]
    assert body["tools"] == [{"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}

    session.settings.tool_choice = "auto"
    output = json.dumps({"forecast": "hail", "high_celsius": 9})
    result = ToolResult(call.call_id, output, Turn(session=session, respond=False))  # as the realtime API sends it
    assert list(handler.process(result)) == []  # joins the conversation; a response.create answers
    answer = list(handler.process(CreateResponse(Turn(session=session))))
    sentences = " ".join(m.text for m in answer if isinstance(m, LLMSentence)).lower()
    assert "hail" in sentences, sentences
    messages = qwen_proxy.posts()[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[0]["content"] == DEFAULT_SYSTEM_PROMPT
    assert messages[2]["tool_calls"][0]["id"] == call.call_id
    assert messages[3] == {"role": "tool", "tool_call_id": call.call_id, "content": result.output}
