"""The llama.cpp backend's call decision and arguments on the default model (Qwen2.5-1.5B),
in conversations, on requests of `../shared/audio/tools/` (their texts; the whole set is
benchmarks/tool_margins.py's).

A small model copies its earlier turns: after an answer in words it leans to words, after a
call to calls.  The decision must follow the request, whatever came before it, and a call's
optional arguments must be given when the request names them."""

from __future__ import annotations

import datetime
import json

import pytest

from arguments_classes.chat_arguments import DEFAULT_SYSTEM_PROMPT
from benchmarks.tool_margins import decided_in_context, first_output
from benchmarks.tools import read_requests
from LLM.tool_calls import FunctionCall, ToolOffer
from tests.conftest import SHARED_AUDIO, make_handler
from tools.builtins import BUILTIN_TOOLS
from tools.schema import function_declaration

TOOLS_AUDIO = SHARED_AUDIO / "tools"
SYSTEM = {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
# A few of the 40 requests, one per tool and five that need none, each with its pulling history;
# benchmarks/tool_margins.py --history decides all 40 (RESULTS_tool_margins_history.md).  The
# ones a small model gets wrong most easily: a city after a time, a boolean and a room, a list
# named by its words, and questions whose words sound like a tool's (minutes, a light bulb).
SAMPLED = ("t01.wav", "t06.wav", "t11.wav", "t14.wav", "t17.wav", "t22.wav",
           "t25.wav", "t29.wav", "t31.wav", "t33.wav", "t40.wav")  # fmt: skip


@pytest.fixture(scope="module")
def default_llm():
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler

    return make_handler(LlamaCppLanguageModelHandler, init_chat_prompt=DEFAULT_SYSTEM_PROMPT)


def test_a_request_is_decided_on_its_own_words_whatever_came_before(default_llm):
    """A request that needs a tool, after an exchange in words, calls it with the right
    arguments; one that needs none, after a call still waiting for its output, is answered
    in words (before the request-alone decision: 26 of the 40 wrong, the requests that need
    a tool answered in words, or their arguments left out)."""
    requests = [request for request in read_requests(TOOLS_AUDIO) if request.file in SAMPLED]
    assert len(requests) == len(SAMPLED) and {r.tool for r in requests} >= {"none", "get_time", "set_lights"}
    offer = ToolOffer(tuple(json.loads((TOOLS_AUDIO / "tools.json").read_text())))
    wrong = []
    for request in requests:
        right, reply = decided_in_context(default_llm, request, offer)
        if not right:
            wrong.append((request.text, reply))
    assert not wrong, wrong


def test_the_built_ins_get_the_city_a_request_names_and_none_it_does_not(default_llm):
    """get_time's `city` is optional: "in Tokyo" must reach it (it was left out: the
    arguments closed before the model could write the key it meant), a bare "What time
    is it?" leaves it out; and arithmetic after a time exchange is still a calculation."""
    offer = ToolOffer(tuple(function_declaration(function) for function in BUILTIN_TOOLS), by_server=True)
    for text, city in (("What time is it in Tokyo right now?", "tokyo"), ("Can you tell me the time in Sydney?",
                       "sydney"), ("What time is it?", None)):  # fmt: skip
        call = first_output(default_llm, [SYSTEM, {"role": "user", "content": text}], offer)
        assert isinstance(call, FunctionCall) and call.name == "get_time", (text, call)
        given = json.loads(call.arguments).get("city")
        assert (city in given.lower()) if city else not given, (text, call.arguments)
    now = datetime.datetime.now().strftime("%I:%M %p").lstrip("0")
    time_exchange = [
        {"role": "user", "content": "What time is it?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"place": "here", "time": now})},
        {"role": "assistant", "content": f"It is {now}."},
    ]
    call = first_output(
        default_llm, [SYSTEM, *time_exchange, {"role": "user", "content": "What is 17 times 23?"}], offer
    )
    assert isinstance(call, FunctionCall) and call.name == "calculate", call


def test_the_reply_to_an_output_does_not_make_the_same_call_again(default_llm):
    """Given a forecast's output, under a system prompt that made the 1.5B call get_weather
    again ("Answer in one short sentence.": the call ranked 1.4 logits ahead), the reply is
    words from the output, not the same call a client would answer again and again."""
    weather = next(
        tool for tool in json.loads((TOOLS_AUDIO / "tools.json").read_text()) if tool["name"] == "get_weather"
    )
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "London"}'}}
    messages = [
        {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."},
        {"role": "user", "content": "Will it rain in London today?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"forecast": "hail", "high_celsius": 9})},
    ]
    reply = list(default_llm.generate(messages, tools=ToolOffer((weather,))))
    assert all(isinstance(piece, str) for piece in reply), reply
    assert "hail" in "".join(reply).lower(), reply


def test_a_one_word_answer_with_tools_offered_is_spoken(default_llm):
    """With the benchmark's six tools, "What is 2 plus 2?" gets the reply "4", one token:
    it must reach the voice (the sentence cutter dropped pieces under two characters)."""
    from conversation.session import Session, SessionSettings
    from conversation.turn import Turn
    from utils.messages import LLMSentence, Transcript

    session = Session(SessionSettings(tools=json.loads((TOOLS_AUDIO / "tools.json").read_text())))
    out = list(default_llm.process(Transcript("What is 2 plus 2?", "en", Turn(session=session))))
    spoken = " ".join(m.text for m in out if isinstance(m, LLMSentence)).lower()
    assert "four" in spoken, out


@pytest.mark.parametrize("model", ["qwen2.5-1.5b", "qwen2.5-0.5b"])
def test_an_enum_and_a_boolean_are_the_values_the_request_names(default_llm, model):
    """The value after a key's colon is sampled with its leading space, as the model writes it:
    after a forced lone space both packaged models put "call the dentist" on the shopping list."""
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler

    llm = default_llm if model == "qwen2.5-1.5b" else make_handler(LlamaCppLanguageModelHandler, model_name=model)
    tools = tuple(json.loads((TOOLS_AUDIO / "tools.json").read_text()))
    offer = ToolOffer(tools)
    for text, name, key, value in (
        ("Add call the dentist to my to do list.", "add_to_list", "list", "todo"),
        ("I need to remember to pay the rent, add it to my to do list.", "add_to_list", "list", "todo"),
        ("Put eggs on the shopping list.", "add_to_list", "list", "shopping"),
        ("Turn off the lights in the kitchen.", "set_lights", "on", False),
        ("Switch on the bedroom lights.", "set_lights", "on", True),
    ):
        prompt = llm.prompt_tokens([SYSTEM, {"role": "user", "content": text}], offer)
        call = llm.tool_calls.call(prompt, [offer.declaration(name)], {"temp": 0.0})
        assert json.loads(call.arguments)[key] == value, (model, text, call.arguments)
