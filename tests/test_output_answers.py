"""A reply to a function's output is words the user hears (LLM/output_answers.py).

The logic on scripted backends, then the packaged 0.5B (`--preset fast`), which
wrote its call again as a fenced JSON block after every output and so said nothing.
"""

from __future__ import annotations

import json

import pytest

from conversation.chat import CallRecord
from conversation.turn import Turn
from LLM.output_answers import answer_outputs_in_words, outputs_as_notes
from LLM.tool_calls import FunctionCall, ToolOffer
from tests.conftest import SHARED_AUDIO
from utils.messages import EndOfResponse, LLMSentence, ToolCall, ToolResult

TOOLS = json.loads((SHARED_AUDIO / "tools" / "tools.json").read_text())
SYSTEM = {"role": "system", "content": "Be brief."}


def conversation(name: str, arguments: dict, output: dict, question: str = "Q?") -> list[dict]:
    call = {"id": "c1", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    return [
        SYSTEM,
        {"role": "user", "content": question},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": json.dumps(output)},
    ]


class Scripted:
    """A backend that replies with `pieces`, and records the prompts it was given."""

    def __init__(self, *pieces: str | FunctionCall) -> None:
        self.pieces = pieces
        self.prompts: list[list[dict]] = []
        self.closed = False

    def __call__(self, messages):
        self.prompts.append(messages)
        try:
            yield from self.pieces
        finally:
            self.closed = True


def test_calls_and_outputs_become_notes_that_ask_for_the_answer():
    messages = conversation("get_time", {"city": "Tokyo"}, {"time": "4:35 PM"}, "Time in Tokyo?")
    notes = outputs_as_notes(messages)
    assert notes[:2] == messages[:2]  # the system prompt and the question are untouched
    assert len(notes) == 3 and notes[2]["role"] == "system"
    assert notes[2]["content"].startswith('The get_time function (called with {"city": "Tokyo"}) returned: ')
    assert '"4:35 PM"' in notes[2]["content"] and notes[2]["content"].endswith(
        "Answer the user's question from this result, in words."
    )
    assert not any("tool_calls" in m or m["role"] == "tool" for m in notes)


def test_two_outputs_of_one_message_are_one_note_and_earlier_calls_stay_notes_without_the_request():
    calls = [
        {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
    ]
    earlier = conversation("set_timer", {"minutes": 5}, {"ok": True})[1:]
    messages = [
        SYSTEM, *earlier, {"role": "assistant", "content": "Timer set."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Let me look.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "a", "content": "sun"},
        {"role": "tool", "tool_call_id": "b", "content": "hail"},
    ]  # fmt: skip
    notes = outputs_as_notes(messages)
    assert [m["role"] for m in notes] == ["system", "user", "system", "assistant", "user", "assistant", "system"]
    assert "Answer the user's question" not in notes[2]["content"]  # only the outputs that end it ask for the answer
    assert notes[5] == {"role": "assistant", "content": "Let me look."}  # what was said with the calls stays
    assert "Paris" in notes[6]["content"] and "Rome" in notes[6]["content"] and "hail" in notes[6]["content"]


@pytest.mark.parametrize(
    "first",
    ['```json\n{"name": "get_time"}```', '  {"name": "get_time", "arguments": {}}', "<tool_call>", "[1, 2]"],
)
def test_a_reply_to_an_output_that_opens_as_no_answer_does_is_asked_again_with_notes(first):
    with_tools = Scripted(first[:2], first[2:], "never read")
    plain = Scripted("It is ", "4:35 PM.")
    messages = conversation("get_time", {"city": "Tokyo"}, {"time": "4:35 PM"})
    out = list(answer_outputs_in_words(with_tools, plain)(messages))
    assert "".join(out) == "It is 4:35 PM."
    assert with_tools.closed  # the first reply was stopped where it showed, not written out
    assert plain.prompts == [outputs_as_notes(messages)]


def test_a_reply_that_calls_the_answered_function_again_is_asked_again_but_a_new_call_goes_through():
    messages = conversation("get_time", {"city": "Tokyo"}, {"time": "4:35 PM"})
    again = Scripted(FunctionCall("get_time", '{"city": "Tokyo"}'))
    plain = Scripted("4:35 PM.")
    assert list(answer_outputs_in_words(again, plain)(messages)) == ["4:35 PM."]
    next_step = FunctionCall("get_weather", '{"city": "Tokyo"}')
    chained = Scripted(" ", next_step, "ignored words")
    plain = Scripted("never")
    assert list(answer_outputs_in_words(chained, plain)(messages)) == [" ", next_step, "ignored words"]
    assert plain.prompts == []


def test_words_and_replies_to_the_user_pass_untouched():
    messages = conversation("get_time", {"city": "Tokyo"}, {"time": "4:35 PM"})
    words, plain = Scripted("\n", "It is", " 4:35."), Scripted("never")
    assert "".join(answer_outputs_in_words(words, plain)(messages)) == "\nIt is 4:35."
    to_user = Scripted("{not checked}")  # a reply to the user's words is the backend's own business
    assert list(answer_outputs_in_words(to_user, plain)([SYSTEM, {"role": "user", "content": "Hi"}])) == [
        "{not checked}"
    ]
    assert plain.prompts == []


@pytest.fixture(scope="module")
def fast_llm():
    """The packaged 0.5B of `--preset fast`, with the default system prompt."""
    from arguments_classes.chat_arguments import DEFAULT_SYSTEM_PROMPT
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler
    from tests.conftest import make_handler

    return make_handler(LlamaCppLanguageModelHandler, model_name="qwen2.5-0.5b", init_chat_prompt=DEFAULT_SYSTEM_PROMPT)


@pytest.mark.parametrize(
    ("question", "name", "arguments", "output", "heard"),
    [
        ("What time is it in Tokyo right now?", "get_time", {"city": "Tokyo"}, {"time": "4:35 PM"}, ("4:35",)),
        (
            "What's the weather in Oslo?",
            "get_weather",
            {"city": "Oslo"},
            {"conditions": "hail", "high_c": 9},
            ("hail", "nine"),
        ),
        (
            "Play some jazz.",
            "play_music",
            {"query": "jazz"},
            {"playing": "Take Five by Dave Brubeck"},
            ("take five", "brubeck"),
        ),
    ],
)
def test_the_fast_presets_model_answers_a_functions_output_in_words(fast_llm, question, name, arguments, output, heard):
    """Through the handler, as the server runs it: the request, the call, its output, the spoken answer."""
    from conversation.session import Session, SessionSettings

    session = Session(SessionSettings(tools=TOOLS))
    chat = fast_llm.chat_for(session)
    chat.add_user(question)
    chat.add_tool_calls("", [CallRecord("call_1", name, json.dumps(arguments))])
    turn = Turn(session=session)
    out = list(fast_llm.process(ToolResult("call_1", json.dumps(output), turn)))
    assert not any(isinstance(m, ToolCall) for m in out)  # its calls after an output were noise: words only
    assert isinstance(out[-1], EndOfResponse)
    spoken = " ".join(m.text for m in out if isinstance(m, LLMSentence))
    assert any(value in spoken.lower().replace("four thirty-five", "4:35") for value in heard), spoken
    assert chat.messages()[-1] == {"role": "assistant", "content": chat.messages()[-1]["content"]}


def test_the_decision_after_an_output_is_words_only_where_measured_so(fast_llm):
    assert fast_llm.tool_calls.calls_after_output is False
    offer = ToolOffer(tuple(TOOLS))
    reply = list(
        fast_llm.generate(
            conversation("set_timer", {"minutes": 10}, {"ok": True}, "Set a timer for ten minutes."), tools=offer
        )
    )
    assert not any(isinstance(piece, FunctionCall) for piece in reply)
