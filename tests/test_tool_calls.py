"""Function calls on the LLM side, without models: tool_choice, what a reply may call,
calls found in streamed text, messages for chat templates, calls and outputs in the chat,
and the answer loop's handling of a call."""

from __future__ import annotations

import json
import threading

import pytest

from conversation.chat import NO_RESULT, CallRecord, Chat
from conversation.turn import Turn
from LLM.answer_loop import answer_chat
from LLM.llama_tools import _closes_string, json_end, object_plan
from LLM.tool_calls import (
    CallTextFilter,
    FunctionCall,
    ToolChoice,
    ToolOffer,
    answered_calls,
    call_problem,
    chat_template_request,
    filtered_pieces,
    repeats,
    template_messages,
)
from utils.messages import EndOfResponse, LLMSentence, ToolCall

TOOLS = (
    {"type": "function", "name": "get_weather", "description": "Weather.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    {"type": "function", "name": "set_timer", "description": "Timer.",
     "parameters": {"type": "object", "properties": {"minutes": {"type": "number"}, "label": {"type": "string"}},
                    "required": ["minutes"]}},
)  # fmt: skip


def test_tool_choice_is_read_in_both_api_formats_and_named_wrong_is_refused():
    assert ToolChoice.parse("required") == ToolChoice("required")
    assert ToolChoice.parse({"type": "function", "name": "f"}) == ToolChoice("function", "f")
    assert ToolChoice.parse({"type": "function", "function": {"name": "f"}}).name == "f"
    assert ToolChoice("function", "f").chat_completions() == {"type": "function", "function": {"name": "f"}}
    for bad in ("sometimes", {"type": "function"}, {"type": "mcp", "name": "x"}):
        with pytest.raises(ValueError):
            ToolChoice.parse(bad)


def test_what_a_reply_may_call_follows_the_choice():
    assert [t["name"] for t in ToolOffer(TOOLS).callable] == ["get_weather", "set_timer"]
    assert ToolOffer(TOOLS, ToolChoice("none")).callable == []
    assert [t["name"] for t in ToolOffer(TOOLS, ToolChoice("function", "set_timer")).callable] == ["set_timer"]
    assert ToolOffer(TOOLS, ToolChoice("required")).must_call and not ToolOffer(TOOLS).must_call
    assert len(ToolOffer(TOOLS, ToolChoice("none")).template_tools()) == 2  # the prompt never changes


def test_calls_are_found_in_streamed_text_and_the_words_before_them_pass_through():
    finder = CallTextFilter()
    pieces = [
        "Let me check",
        ". <tool",
        '_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
    ]
    said = "".join(finder.push(piece) for piece in pieces) + finder.flush()
    assert said == "Let me check. "
    (call,) = finder.calls()
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    text_only = CallTextFilter()
    assert text_only.push("Is 3 <") == "Is 3 " and text_only.push(" 4? Yes.") == "< 4? Yes."


def test_a_reply_that_is_a_bare_call_object_is_a_call_never_words():
    """llama.cpp's server returns the call as text when the model leaves out the tag, with the
    doubled braces of the Qwen2.5 template ('{{"name": ...}}'): a call, not words to speak."""
    for pieces in (['{{"name": "get_weather", ', '"arguments": {"city": "Paris"}}}'],
                   [" \n", '{"name": "get_weather", "arguments": {"city": "Paris"}}']):  # fmt: skip
        finder = CallTextFilter()
        assert "".join(finder.push(piece) for piece in pieces) + finder.flush() == ""
        (call,) = finder.calls()
        assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    words = CallTextFilter()
    assert words.push(" ") == "" and words.push("It is {sunny}.") == " It is {sunny}." and not words.calls()


def test_filtered_pieces_drop_calls_that_do_not_match_the_schema():
    offer = ToolOffer(TOOLS)
    good = '<tool_call>{"name": "set_timer", "arguments": {"minutes": 5}}</tool_call>'
    out = list(filtered_pieces(iter(["OK. ", good]), offer))
    assert out[0] == "OK. " and isinstance(out[1], FunctionCall) and out[1].name == "set_timer"
    wrong = '<tool_call>{"name": "set_timer", "arguments": {"minutes": "five"}}</tool_call>'
    assert list(filtered_pieces(iter([wrong]), offer)) == []
    assert "may not call" in call_problem(FunctionCall("get_weather", "{}"), ToolOffer(TOOLS, ToolChoice("none")))
    assert "not JSON" in call_problem(FunctionCall("get_weather", "{city"), offer)


def test_messages_for_templates_with_and_without_tools():
    chat = Chat(size=4, system_prompt="Be brief.")
    chat.add_user("Weather in Paris?")
    chat.add_tool_calls("", [CallRecord("call_1", "get_weather", '{"city": "Paris"}')])
    chat.add_tool_result("call_1", '{"forecast": "hail"}')
    messages = chat.messages()
    for_template = template_messages(messages)
    assert for_template[2]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert for_template[2]["content"] == ""
    plain, declared = chat_template_request(messages, ToolOffer(TOOLS), template="{{ messages }}")
    assert declared is None and "# Tools" in plain[0]["content"] and "get_weather" in plain[0]["content"]
    assert "<tool_call>" in plain[2]["content"] and plain[3] == {
        "role": "user", "content": '<tool_response>\n{"forecast": "hail"}\n</tool_response>'}  # fmt: skip
    knows, declared = chat_template_request(messages, ToolOffer(TOOLS), template="{% if tools %}{% endif %}")
    assert declared[0]["function"]["name"] == "get_weather" and knows[0]["content"] == "Be brief."


def test_the_chat_keeps_calls_and_outputs_and_a_call_never_answered_reads_as_no_result():
    chat = Chat(size=1, system_prompt="s")
    chat.add_user("Weather in Paris?")
    chat.add_tool_calls("Let me check.", [CallRecord("call_1", "get_weather", '{"city": "Paris"}')])
    chat.add_user("Never mind. Hello!")  # the user went on before the client answered
    chat.add_assistant("Hello!")
    messages = chat.messages()
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "user", "assistant"]
    assert messages[3] == {"role": "tool", "tool_call_id": "call_1", "content": NO_RESULT}
    assert not chat.add_tool_result("call_unknown", "x")
    chat.add_user("And now?")
    chat.add_assistant("Now.")  # size 1: the whole first exchange, calls included, is dropped
    assert [m["role"] for m in chat.messages()] == ["system", "user", "assistant"]


def test_a_late_output_joins_the_end_of_the_conversation_with_its_call():
    """The user went on before the client answered the call: the output comes last (as
    the Realtime API appends it), its call moved with it, so the reply to it reads it last;
    the words said before the call stay where they were."""
    chat = Chat(size=4, system_prompt="s")
    chat.add_user("Weather in London?")
    chat.add_tool_calls("Let me check.", [CallRecord("call_1", "get_weather", '{"city": "London"}')])
    chat.add_user("What is the capital of France?")
    chat.add_assistant("Paris.")
    assert chat.add_tool_result("call_1", "hail")
    messages = chat.messages()
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "assistant", "tool"]
    assert messages[2] == {"role": "assistant", "content": "Let me check."}
    assert messages[5]["tool_calls"][0]["id"] == "call_1" and messages[5]["content"] == ""
    assert messages[6] == {"role": "tool", "tool_call_id": "call_1", "content": "hail"}
    assert chat.add_tool_result("call_1", "sun") and chat.messages()[6]["content"] == "sun"  # replaced in place
    chat.add_assistant("It will hail in London.")
    assert chat.messages()[-1] == {"role": "assistant", "content": "It will hail in London."}
    # A call without words before it leaves nothing behind; an output in time stays right after its call.
    chat = Chat(size=4, system_prompt="s")
    chat.add_user("Weather in London?")
    chat.add_tool_calls("", [CallRecord("call_2", "get_weather", '{"city": "London"}')])
    chat.add_user("Hello?")
    chat.add_assistant("Hello!")
    chat.add_tool_result("call_2", "hail")
    assert [m["role"] for m in chat.messages()] == ["system", "user", "user", "assistant", "assistant", "tool"]


def test_the_answer_loop_speaks_what_comes_before_a_call_then_ends_or_goes_on():
    def generate(messages):
        yield "Let me check that for you. "
        yield FunctionCall("get_weather", '{"city": "Paris"}', "call_7")

    for by_server in (False, True):
        chat = Chat(system_prompt="s")
        chat.add_user("Weather in Paris?")
        turn = Turn()
        out = list(answer_chat(turn, chat, generate, threading.Event(), calls_run_by_server=by_server))
        assert isinstance(out[0], LLMSentence) and isinstance(out[1], ToolCall)
        assert out[1].call_id == "call_7" and out[1].by_server is by_server
        # The client's call ends the response; the server's own goes on with its output.
        assert isinstance(out[-1], EndOfResponse) is (not by_server)
        assert chat.has_call("call_7") and chat.messages()[-2]["tool_calls"][0]["id"] == "call_7"


def test_llama_call_writer_helpers():
    required, optional = object_plan(TOOLS[1]["parameters"])
    assert [key for key, _ in required] == ["minutes"] and [key for key, _ in optional] == ["label"]
    assert object_plan({"type": "object", "properties": {"to": {"type": "array"}}}) is None
    assert object_plan({"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}) is None
    assert _closes_string('Paris"') and not _closes_string('say \\"') and _closes_string('a\\\\"')
    assert json_end('{"a": {"b": 1}} trailing') == 15 and json_end('{"a": ') is None


def test_a_turn_calling_the_servers_tools_again_and_again_must_answer_after_three():
    """A model that calls again after every output (each time a new call: the same one again
    is answered in words at once, LLM/output_answers.py): the turn's fourth reply may not call."""
    import queue

    from conversation.session import Session, SessionSettings
    from LLM.language_model import MAX_SERVER_CALLS_PER_TURN, LanguageModelHandler
    from utils.messages import ToolResult, Transcript

    class AlwaysCalls(LanguageModelHandler):
        def generate(self, messages, max_tokens=None, tools=None):
            if tools is not None and tools.callable:
                yield FunctionCall("get_weather", json.dumps({"city": f"Oslo {len(messages)}"}))
            else:
                yield "It is sunny."

    handler = AlwaysCalls(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs={})
    session = Session(SessionSettings(server_tools=list(TOOLS)))
    turn = Turn(session=session)
    out = list(handler.process(Transcript("Weather in Oslo?", "en", turn)))
    for _ in range(MAX_SERVER_CALLS_PER_TURN):
        (call,) = [m for m in out if isinstance(m, ToolCall)]
        assert call.by_server and not any(isinstance(m, EndOfResponse) for m in out)  # the turn goes on
        out = list(handler.process(ToolResult(call.call_id, '{"forecast": "sun"}', turn)))
    assert [type(m) for m in out] == [LLMSentence, EndOfResponse] and out[0].text == "It is sunny."
    assert turn.calls_made == MAX_SERVER_CALLS_PER_TURN


def test_the_calls_an_output_answers_and_a_call_that_repeats_one():
    chat = Chat(size=4, system_prompt="s")
    chat.add_user("Weather in Paris and Rome?")
    chat.add_tool_calls(
        "", [CallRecord("c1", "get_weather", '{"city": "Paris"}'), CallRecord("c2", "get_weather", '{"city": "Rome"}')]
    )
    chat.add_tool_result("c1", "hail")
    answered = answered_calls(chat.messages())  # c2 reads as never answered: both end the messages
    assert answered == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]
    assert repeats(FunctionCall("get_weather", '{ "city":"Paris" }'), answered)
    assert not repeats(FunctionCall("get_weather", '{"city": "Oslo"}'), answered)
    chat.add_user("Thanks. And in Oslo?")
    assert answered_calls(chat.messages()) == []  # the user's words end them
