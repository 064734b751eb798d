"""Function calling on the LLM side: what a reply may call, and how calls look in text.

Every backend is handed a `ToolOffer` (the declarations a reply may call and
the `tool_choice`) with the chat, and yields `FunctionCall`s among its text
pieces.  The Qwen2.5 chat templates (and Hermes-style models) write a call as

    <tool_call>
    {"name": "get_time", "arguments": {"city": "Paris"}}
    </tool_call>

llama.cpp constrains that JSON with a grammar (LLM/llama_tools.py); the
backends that stream text (transformers, a chat-completions server that
returns the call as text) find it with `CallTextFilter`.  The chat keeps
calls in the chat-completions format (arguments as JSON text);
`template_messages` gives a chat template what it expects (arguments as an
object, and the tool turns written out for a template without tool support).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tools.schema import arguments_problem, chat_completions_tool

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:20]}"


@dataclass(frozen=True)
class ToolChoice:
    """`tool_choice`: "auto" (the model decides), "none" (never call),
    "required" (call one), or "function" with `name` (call that one)."""

    mode: str = "auto"
    name: str | None = None

    @classmethod
    def parse(cls, value: Any) -> ToolChoice:
        """From the realtime API's value ("auto", {"type": "function", "name": X}) or
        the chat-completions one ({"type": "function", "function": {"name": X}});
        raises ValueError naming what is wrong."""
        if value is None:
            return cls()
        if isinstance(value, str):
            if value not in ("auto", "none", "required"):
                raise ValueError(f"tool_choice must be 'auto', 'none', 'required' or a function, not {value!r}")
            return cls(value)
        data = value if isinstance(value, dict) else getattr(value, "model_dump", lambda: {})()
        name = data.get("name") or (data.get("function") or {}).get("name")
        if data.get("type") != "function" or not isinstance(name, str) or not name:
            raise ValueError("tool_choice must name a function: {'type': 'function', 'name': ...}")
        return cls("function", name)

    def api_value(self) -> str | dict[str, str]:
        """As the realtime API shows it."""
        return {"type": "function", "name": self.name or ""} if self.mode == "function" else self.mode

    def chat_completions(self) -> str | dict[str, Any]:
        if self.mode == "function":
            return {"type": "function", "function": {"name": self.name}}
        return self.mode


@dataclass(frozen=True)
class ToolOffer:
    """The tools one reply is offered and whether it must call one.

    `by_server`: the server runs these calls itself (`--tools`, the
    built-ins) and the turn goes on with their outputs; otherwise the client
    that declared them does, and the call ends the response."""

    declarations: tuple[dict[str, Any], ...] = ()
    choice: ToolChoice = field(default_factory=ToolChoice)
    by_server: bool = False

    def __bool__(self) -> bool:
        return bool(self.declarations)

    def declaration(self, name: str) -> dict[str, Any] | None:
        return next((tool for tool in self.declarations if tool["name"] == name), None)

    @property
    def callable(self) -> list[dict[str, Any]]:
        """The declarations this reply may call (all, one, or none)."""
        if self.choice.mode == "none":
            return []
        if self.choice.mode == "function":
            chosen = self.declaration(self.choice.name or "")
            return [chosen] if chosen else []
        return list(self.declarations)

    @property
    def must_call(self) -> bool:
        return self.choice.mode in ("required", "function") and bool(self.callable)

    def template_tools(self) -> list[dict[str, Any]]:
        """Every declaration, in the chat-completions format, for the prompt.
        The choice never changes the prompt (so its cached prefix serves every
        reply); it only steers decoding."""
        return [chat_completions_tool(tool) for tool in self.declarations]


@dataclass(frozen=True)
class FunctionCall:
    """A call a backend produced: the function's name and its arguments as JSON text."""

    name: str
    arguments: str
    call_id: str = field(default_factory=new_call_id)


def call_problem(call: FunctionCall, offer: ToolOffer) -> str | None:
    """Why a call cannot be made (None: it can): an undeclared function, or
    arguments that are not JSON or do not match its parameters schema."""
    declaration = next((tool for tool in offer.callable if tool["name"] == call.name), None)
    if declaration is None:
        return f"the model called {call.name!r}, which this reply may not call"
    try:
        arguments = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as error:
        return f"the arguments of {call.name} are not JSON: {error}"
    problem = arguments_problem(declaration.get("parameters"), arguments)
    return f"the arguments of {call.name} do not match its schema: {problem}" if problem else None


def parse_call(text: str) -> FunctionCall | None:
    """One `{"name": ..., "arguments": {...}}` object (the inside of a
    <tool_call> block); None when it is not one."""
    text = text.strip()
    if text.startswith("{{") and text.endswith("}}"):  # the doubled braces of Qwen2.5's template, copied
        text = text[1:-1]
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    return FunctionCall(data["name"], json.dumps(arguments, ensure_ascii=False))


class CallTextFilter:
    """Finds the calls in a stream of text pieces.

    A call is a <tool_call> block, or a reply that is a bare call object
    (`{"name": ..., "arguments": ...}`, or with the doubled braces of the
    Qwen2.5 template, `{{"name": ...}}`: what llama.cpp's server returns as
    text when the model writes the call without its tag); a reply is never
    spoken as JSON.  Text before the first block passes through as it comes
    (the sentences said before a call are spoken), except a tail that may be
    the start of "<tool_call>" (or leading blanks, before a bare object),
    held until the next piece tells; everything from the first call on is
    kept and parsed at the end (`calls`)."""

    def __init__(self) -> None:
        self._held = ""
        self._calls_text: str | None = None
        self._started = False  # some reply text has passed through

    def push(self, piece: str) -> str:
        """The text of `piece` that is reply, not call."""
        if self._calls_text is not None:
            self._calls_text += piece
            return ""
        text = self._held + piece
        if not self._started:
            if not text.strip():
                self._held = text
                return ""
            if text.lstrip().startswith("{"):
                self._held, self._calls_text = "", text.lstrip()
                return ""
            self._started = True
        start = text.find(CALL_OPEN)
        if start >= 0:
            self._held, self._calls_text = "", text[start:]
            return text[:start]
        keep = next((n for n in range(len(CALL_OPEN) - 1, 0, -1) if text.endswith(CALL_OPEN[:n])), 0)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """What is still held back at the end of the reply, when no call began."""
        text, self._held = self._held, ""
        return text

    @property
    def began(self) -> bool:
        return self._calls_text is not None

    def calls(self) -> list[FunctionCall]:
        text = self._calls_text or ""
        blocks = _CALL_BLOCK.findall(text)
        if not text.startswith(CALL_OPEN):  # a bare call object first (maybe <tool_call> blocks after it)
            blocks.insert(0, text.split(CALL_OPEN)[0])
        found = [parse_call(block) for block in blocks]
        return [call for call in found if call is not None]


def filtered_pieces(pieces: Iterable[str | FunctionCall], offer: ToolOffer) -> Iterator[str | FunctionCall]:
    """A text stream with its <tool_call> blocks turned into FunctionCalls
    (only those the offer allows, with arguments that match their schema);
    calls already made pass through."""
    if not offer.callable:
        yield from pieces
        return
    finder = CallTextFilter()
    for piece in pieces:
        if isinstance(piece, FunctionCall):
            yield piece
            continue
        text = finder.push(piece)
        if text:
            yield text
    rest = finder.flush()
    if rest:
        yield rest
    for call in finder.calls():
        if call_problem(call, offer) is None:
            yield call


def request_alone(messages: list[dict[str, Any]], system_role: str = "system") -> list[dict[str, Any]] | None:
    """The system prompt and the user's last message(s) without the conversation
    before them: what the call decision reads (LLM/llama_tools.py); None when
    `messages` hold nothing else, or do not end with the user's words."""
    system = [message for message in messages[:1] if message.get("role") == system_role]
    start = len(messages)
    while start > len(system) and messages[start - 1].get("role") not in ("assistant", "tool", system_role):
        start -= 1
    if start == len(messages) or start == len(system):
        return None
    return [*system, *messages[start:]]


def answered_calls(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """The calls (name, arguments as a value) whose outputs end `messages`:
    what a reply to those outputs would only repeat if it called them again."""
    answered = set()
    index = len(messages)
    while index > 0 and messages[index - 1].get("role") == "tool":
        answered.add(messages[index - 1].get("tool_call_id"))
        index -= 1
    calls = (messages[index - 1].get("tool_calls") or []) if index > 0 and answered else []
    return [
        (call["function"]["name"], _as_object(call["function"]["arguments"]))
        for call in calls
        if call.get("id") in answered
    ]


def repeats(call: FunctionCall, answered: list[tuple[str, Any]]) -> bool:
    """Whether `call` is one of `answered` again (same function, same arguments)."""
    return (call.name, _as_object(call.arguments)) in answered


def template_messages(messages: list[dict[str, Any]], template_knows_tools: bool = True) -> list[dict[str, Any]]:
    """Chat messages as a chat template renders them: a call's arguments as
    an object (templates write them with `tojson`), no None content.  A
    template that knows no tools gets the calls and outputs written out in
    the <tool_call> / <tool_response> text format instead."""
    out: list[dict[str, Any]] = []
    for message in messages:
        calls = message.get("tool_calls")
        if message.get("role") == "tool":
            if template_knows_tools:
                out.append({**message})
            else:
                out.append({"role": "user", "content": f"<tool_response>\n{message['content']}\n</tool_response>"})
        elif calls:
            functions = [
                {"name": call["function"]["name"], "arguments": _as_object(call["function"]["arguments"])}
                for call in calls
            ]
            if template_knows_tools:
                tool_calls = [{**call, "function": function} for call, function in zip(calls, functions, strict=True)]
                out.append({**message, "content": message.get("content") or "", "tool_calls": tool_calls})
            else:
                written = "".join(f"\n{CALL_OPEN}\n{json.dumps(function)}\n{CALL_CLOSE}" for function in functions)
                out.append({"role": message["role"], "content": (message.get("content") or "") + written})
        else:
            out.append(message)
    return out


def _as_object(arguments: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def tools_system_prompt(tools: list[dict[str, Any]]) -> str:
    """The tools written into a system prompt, for a chat template that has
    no tools section of its own (the Hermes format Qwen2.5 uses)."""
    listed = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools)
    return (
        "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{listed}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}'
        "\n</tool_call>"
    )


def chat_template_request(
    messages: list[dict[str, Any]], offer: ToolOffer | None, template: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(messages, tools) to hand a Hugging Face chat template: the template's
    own tools section when it has one; else the tools written into the system
    prompt and the tool turns written out as text, so a model whose template
    knows no tools still sees them (and nothing breaks)."""
    knows_tools = bool(template) and "tools" in (template or "")
    messages = template_messages(messages, knows_tools)
    if not offer:
        return messages, None
    if knows_tools:
        return messages, offer.template_tools()
    described = tools_system_prompt(offer.template_tools())
    if messages and messages[0].get("role") == "system":
        return [{**messages[0], "content": (messages[0]["content"] or "") + described}, *messages[1:]], None
    return [{"role": "system", "content": described.strip()}, *messages], None
