"""How far behind its best token the default LLM ranks a call's first token.

    python benchmarks/tool_margins.py [--system "prompt"] [--output benchmarks/RESULTS_tool_margins.md]
    python benchmarks/tool_margins.py --history --output benchmarks/RESULTS_tool_margins_history.md

The llama.cpp backend decides to call a function when the best call opener's
logit plus `--lm_tool_call_bias` beats every other first token
(LLM/llama_tools.py).  This prints that margin (opener minus best other,
bias left out) for the 40 requests of `../shared/audio/tools/requests.tsv`
(their texts) and six everyday questions, with the six tools of its
`tools.json` and with the two built-ins, under one system prompt: where the
requests that need a tool and those that need none fall tells which bias
separates them, and how much a system prompt moves them.

`--history`: the same margins in a conversation (after an exchange in words,
after a call still waiting for its output) against the request alone, under
the default prompt with the six tools: why the decision reads the request
alone.  Then the decisions as the handler makes them, each request after the
exchange that pulls the other way (a request that needs a tool after an answer
in words, one that needs none after a call): right when it calls the right
tool with the right arguments, or answers in words when no tool fits
(`tests/test_llama_tool_decisions.py` checks a few of them).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from arguments_classes.chat_arguments import DEFAULT_SYSTEM_PROMPT  # noqa: E402
from benchmarks.latency import machine_description  # noqa: E402

TOOLS = REPO.parent / "shared" / "audio" / "tools"
EVERYDAY = [
    ("What time is it?", "get_time"),
    ("What is seventeen times twenty-three?", "calculate"),
    ("What's the date today?", "get_time"),
    ("Can you recommend a good book for a long train ride?", "none"),
    ("What is the capital of France?", "none"),
    ("How do I bake bread?", "none"),
]


def margins(system: str) -> list[tuple[str, str, float, str]]:
    import queue
    import threading

    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler
    from LLM.tool_calls import ToolOffer
    from tools.builtins import BUILTIN_TOOLS
    from tools.schema import function_declaration

    handler = LlamaCppLanguageModelHandler(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs={})
    six = tuple(json.loads((TOOLS / "tools.json").read_text()))
    builtins = tuple(function_declaration(function) for function in BUILTIN_TOOLS)
    with open(TOOLS / "requests.tsv") as table:
        requests = [(row["request"], row["expected_tool"]) for row in csv.DictReader(table, delimiter="\t")]
    found = []
    for name, declarations in (("six tools", six), ("built-ins", builtins)):
        offer = ToolOffer(declarations=declarations, by_server=name == "built-ins")
        for text, wanted in requests + EVERYDAY:
            messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
            handler.tool_calls._decides_to_call(handler.prompt_tokens(messages, offer), 0.0)
            found.append((name, wanted, handler.tool_calls.last_margin, text))
    return found


def report(system: str, rows: list[tuple[str, str, float, str]]) -> str:
    lines = [
        f"# Call openers' margins\n\nMachine: {machine_description()}. System prompt: {system!r}.\n",
        "| tools | requests | need a tool: min / median / max | need none: min / median / max |",
        "|---|---|---|---|",
    ]
    for name in dict.fromkeys(row[0] for row in rows):
        need = sorted(m for n, w, m, _ in rows if n == name and w != "none")
        none = sorted(m for n, w, m, _ in rows if n == name and w == "none")
        lines.append(f"| {name} | {len(need) + len(none)} | {need[0]:.2f} / {need[len(need) // 2]:.2f} / "
                     f"{need[-1]:.2f} | {none[0]:.2f} / {none[len(none) // 2]:.2f} / {none[-1]:.2f} |")  # fmt: skip
    lines += ["", "| tools | wanted | margin | request |", "|---|---|---|---|"]
    lines += [f"| {n} | {w} | {m:.2f} | {t} |" for n, w, m, t in rows]
    return "\n".join(lines) + "\n"


HISTORIES = {
    "alone": [],
    "after an answer in words": [
        {"role": "user", "content": "What is the capital of Italy?"},
        {"role": "assistant", "content": "The capital of Italy is Rome."},
    ],
    "after a call waiting for its output": [
        {"role": "user", "content": "Will it rain in London today?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "London"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"error": "no result: the call was not answered"}'},
    ],
}  # fmt: skip


def pulling_history(request) -> list[dict]:
    """The exchange a small model would copy the wrong way: words before a request that needs a
    tool, a call before one that needs none."""
    return HISTORIES["after an answer in words" if request.tool != "none" else "after a call waiting for its output"]


def first_output(handler, messages: list[dict], offer):
    """The reply's call, or its first words (the decision is made by then)."""
    replies = iter(handler.generate(messages, tools=offer))
    try:
        return next(replies)
    finally:
        replies.close()


def decided_in_context(handler, request, offer) -> tuple[bool, object]:
    """Whether the handler decides `request` right after its pulling history (a call's name and
    arguments included), and what it gave: a FunctionCall or its first words."""
    from benchmarks.tools import Outcome
    from LLM.tool_calls import FunctionCall

    messages = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, *pulling_history(request),
                {"role": "user", "content": request.text}]  # fmt: skip
    reply = first_output(handler, messages, offer)
    called = reply if isinstance(reply, FunctionCall) else None
    outcome = Outcome(request, called=called.name if called else None,
                      arguments=json.loads(called.arguments) if called else {})  # fmt: skip
    return outcome.call_right, reply


def history_report() -> str:
    """The margins in context (no request alone: `_decides_to_call` on the whole prompt)."""
    import queue
    import threading

    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler
    from LLM.tool_calls import ToolOffer

    handler = LlamaCppLanguageModelHandler(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs={})
    offer = ToolOffer(tuple(json.loads((TOOLS / "tools.json").read_text())))
    with open(TOOLS / "requests.tsv") as table:
        requests = [(row["request"], row["expected_tool"]) for row in csv.DictReader(table, delimiter="\t")]
    system = {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    lines = [
        f"# Call openers' margins in a conversation\n\nMachine: {machine_description()}. The default system "
        "prompt, the six tools, the 40 requests; the margin as the model ranks the openers after the whole "
        "conversation (bias left out).\n",
        "| before the request | need a tool: min / median / max | need none: min / median / max |",
        "|---|---|---|",
    ]
    for label, history in HISTORIES.items():
        found = []
        for text, wanted in requests:
            prompt = handler.prompt_tokens([system, *history, {"role": "user", "content": text}], offer)
            handler.tool_calls._decides_to_call(prompt, 0.0)
            found.append((wanted, handler.tool_calls.last_margin))
        need = sorted(m for w, m in found if w != "none")
        none = sorted(m for w, m in found if w == "none")
        lines.append(f"| {label} | {need[0]:.2f} / {need[len(need) // 2]:.2f} / {need[-1]:.2f} | "
                     f"{none[0]:.2f} / {none[len(none) // 2]:.2f} / {none[-1]:.2f} |")  # fmt: skip
    return "\n".join(lines) + "\n\n" + decisions_report(handler, offer)


def decisions_report(handler, offer) -> str:
    """The generated decisions, each request after the exchange that pulls the other way."""
    from benchmarks.tools import read_requests

    requests = read_requests(TOOLS)
    wrong = []
    for request in requests:
        right, reply = decided_in_context(handler, request, offer)
        if not right:
            wrong.append(f"- {request.file} {request.text!r} (expected {request.tool} {request.arguments}): {reply!r}")
    lines = [
        "## Decisions as generated, after the exchange that pulls the other way\n",
        "A request that needs a tool after an answer in words, one that needs none after a call waiting for its "
        f"output; right: the right tool with the right arguments, or words when none fits.\n\n"
        f"Right: {len(requests) - len(wrong)}/{len(requests)}.",
    ]
    return "\n".join([*lines, *wrong]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", action="append", help="system prompt(s); default: the pipeline's")
    parser.add_argument("--output", help="write the report here as well")
    parser.add_argument("--history", action="store_true", help="margins in a conversation against alone")
    args = parser.parse_args()
    if args.history:
        text = history_report()
    else:
        text = "\n".join(report(system, margins(system)) for system in args.system or [DEFAULT_SYSTEM_PROMPT])
    print(text)
    if args.output:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
