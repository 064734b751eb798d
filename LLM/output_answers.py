"""Answers to a function's output in words, from models that would only repeat the call.

After a function's output the model is meant to answer from it.  Small
models often do not: the packaged 0.5B (`--preset fast`), shown the output
in its chat template's tool turn, writes the call again as text (a fenced
```` ```json ```` block, or the bare call object), which is never spoken, so
the user heard nothing after any call (benchmarks/RESULTS_tools.md: 0 of 26
follow-ups).  The same model, told the output in a plain note after the
question ("The get_time function returned: {...}. Answer the user's question
from it."), answers "The time in Tokyo is 4:35 PM."

So every backend's reply to an output goes through `answer_outputs_in_words`:
when the reply opens with something no spoken answer opens with (a code
fence, a JSON object, a call tag) or calls an answered function again with
the same arguments, that reply is dropped at once (a token or two in) and
the model is asked again with the calls and outputs written as notes
(`outputs_as_notes`), without tools: the answer is words.  A model that
answers from the tool turn itself (the 1.5B default does) never takes the
second path, so its prompts, cache and chained calls are untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from LLM.tool_calls import FunctionCall, answered_calls, repeats

logger = logging.getLogger(__name__)

Generate = Callable[[list[dict[str, Any]]], Iterable[str | FunctionCall]]

# The first characters of replies that are not words: a code block, a JSON object or
# array, a call tag (<tool_call>) or other markup.  No spoken answer opens with one.
NOT_WORDS = "`{[<"


def ends_with_outputs(messages: list[dict[str, Any]]) -> bool:
    """Whether the conversation ends with function outputs (the reply answers them)."""
    return bool(messages) and messages[-1].get("role") == "tool"


def outputs_as_notes(messages: list[dict[str, Any]], system_role: str = "system") -> list[dict[str, Any]]:
    """`messages` with every call and output written as a plain note in the
    `system_role`'s voice, for a prompt without tools: what the assistant said
    with its calls stays, each output becomes "The NAME function (called
    with ARGS) returned: OUTPUT.", and the outputs that end the conversation
    are followed by the request to answer the user from them."""
    calls: dict[str, tuple[str, str]] = {}
    out: list[dict[str, Any]] = []
    note: dict[str, Any] | None = None  # the last note written: the outputs of one message join it
    for message in messages:
        if message.get("tool_calls"):
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                calls[call.get("id", "")] = (function.get("name", "a"), _compact(function.get("arguments")))
            if message.get("content"):
                out.append({"role": message["role"], "content": message["content"]})
        elif message.get("role") == "tool":
            name, arguments = calls.get(message.get("tool_call_id", ""), ("a", "{}"))
            called = "" if arguments in ("{}", "") else f" (called with {arguments})"
            text = f"The {name} function{called} returned: {message['content']}"
            if out and out[-1] is note:
                out[-1] = note = {**note, "content": note["content"] + "\n" + text}
            else:
                note = {"role": system_role, "content": text}
                out.append(note)
        else:
            out.append(message)
    if ends_with_outputs(messages):
        last = out[-1]
        out[-1] = {**last, "content": last["content"] + "\nAnswer the user's question from this result, in words."}
    return out


def _compact(arguments: Any) -> str:
    """A call's arguments as one line of JSON."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            return arguments
    return json.dumps(arguments, ensure_ascii=False)


def answer_outputs_in_words(generate: Generate, plain: Generate, system_role: str = "system") -> Generate:
    """`generate`, except that a reply to function outputs that opens as no
    spoken answer does, or repeats an answered call, is replaced by `plain`
    (the backend without tools) on the outputs written as notes."""

    def reply(messages: list[dict[str, Any]]) -> Iterator[str | FunctionCall]:
        if not ends_with_outputs(messages):
            yield from generate(messages)
            return
        answered = answered_calls(messages)
        pieces = iter(generate(messages))
        head = ""
        try:
            for piece in pieces:
                if isinstance(piece, FunctionCall):
                    if repeats(piece, answered):
                        logger.info("the reply to %s's output calls it again: asked again with notes", piece.name)
                        break
                    if head:
                        yield head
                    yield piece
                    yield from pieces
                    return
                head += piece
                opening = head.lstrip()
                if not opening:
                    continue
                if opening[0] in NOT_WORDS:
                    logger.info("the reply to a function's output opens with %r: asked again with notes", opening[:12])
                    break
                yield head
                yield from pieces
                return
            else:
                if head:
                    yield head  # a reply of blanks, or a short one that only looked like a mark's start
                return
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        yield from plain(outputs_as_notes(messages, system_role))

    return reply
