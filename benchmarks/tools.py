"""Function calling, measured: does the assistant call the right tool, only when one fits, and fast?

    python benchmarks/tools.py                  # prints the report
    python benchmarks/tools.py --write          # replaces benchmarks/RESULTS_tools.md

The 40 spoken requests of `../shared/audio/tools/` (24 need one of the six tools of its
`tools.json`, 16 need none) go through a realtime server as users speak them: each in a
session of its own, declaring the six tools with `session.update`, through the official
SDK at real-time pace.  A request is scored as `requests.tsv` says: the decision (a call or
none), and the call's name and arguments (strings as case-insensitive substrings, numbers
and booleans exactly).  Every call is answered with a canned output (the weather is "hail",
the time "4:35 PM", ...) and `response.create`; the spoken follow-up is right when its
transcript uses that output.  Every preset runs the requests (`--presets`).

Latency, in the same run on the same server: end of speech -> function call done (the
server's turn metrics: speech end -> the call leaves the LLM), against end of speech -> first
sentence of the same requests in sessions without tools; the server without its built-in tools;
and, as the baseline of "no slower than today", `main` run as its own server (`--main_tree`,
default: an export of the `main` branch).  The bare model (the LLM alone, on the request texts)
gives the same two figures without the pipeline.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS_tools.md"
SHARED = REPO.parent / "shared" / "audio" / "tools"
sys.path.insert(0, str(REPO))

from audio.pcm import load_audio  # noqa: E402
from benchmarks.latency import (  # noqa: E402
    add_output_arguments,
    fmt,
    machine_description,
    machine_details,
    percentile,
    save_results,
)
from benchmarks.server_process import ServerProcess  # noqa: E402
from connections.realtime.client import connect, to_pcm24k  # noqa: E402

# What each tool "returns", and the words of it a follow-up that uses it says (lower case).
OUTPUTS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "get_time": ({"time": "4:35 PM"}, ("4:35", "four thirty-five", "four thirty five", "435")),
    "get_weather": ({"forecast": "hail", "high_celsius": 9}, ("hail",)),
    "set_timer": ({"status": "started", "rings_at": "6:40 PM"}, ("6:40", "six forty", "started", "set")),
    "add_to_list": ({"status": "added", "items_on_list": 7}, ("added", "seven", "7")),
    "set_lights": ({"status": "done"}, ("turned", "switched", " on", " off", "done")),
    "play_music": ({"status": "playing", "track": "Blue in Green", "artist": "Miles Davis"},
                   ("blue in green", "miles davis", "playing")),
}  # fmt: skip
PRESETS = {"default": [], "fast": ["--preset", "fast"], "quality": ["--preset", "quality"]}


@dataclass
class Request:
    file: str
    text: str
    tool: str  # "none" when no tool fits
    arguments: dict[str, Any]


@dataclass
class Outcome:
    request: Request
    called: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    reply: str = ""  # the words of the first response (a request answered without a call)
    follow_up: str = ""  # the answer to the call's output
    error: str = ""

    @property
    def decision_right(self) -> bool:
        return (self.called is not None) == (self.request.tool != "none")

    @property
    def call_right(self) -> bool:
        if not self.decision_right:
            return False
        if self.request.tool == "none":
            return True
        return self.called == self.request.tool and arguments_match(self.request.arguments, self.arguments)

    @property
    def follow_up_right(self) -> bool | None:
        if self.called not in OUTPUTS:
            return None
        return any(word in " " + self.follow_up.lower() for word in OUTPUTS[self.called][1])


def arguments_match(expected: dict[str, Any], given: dict[str, Any]) -> bool:
    """Strings as case-insensitive substrings, numbers and booleans exactly."""
    for key, value in expected.items():
        if key not in given:
            return False
        if isinstance(value, str):
            if not isinstance(given[key], str) or value.lower() not in given[key].lower():
                return False
        elif isinstance(value, bool) or not isinstance(value, int | float):
            if given[key] != value:
                return False
        elif not isinstance(given[key], int | float) or isinstance(given[key], bool) or given[key] != value:
            return False
    return True


def read_requests(folder: Path) -> list[Request]:
    with open(folder / "requests.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [Request(r["file"], r["request"], r["expected_tool"], json.loads(r["expected_arguments"])) for r in rows]


# --- through the server ---------------------------------------------------------------------------
def ask(port: int, folder: Path, request: Request, tools: list[dict] | None, follow_up: bool) -> Outcome:
    """One request in a session of its own: the call (answered with its canned output) or the reply."""
    outcome = Outcome(request)
    conversation = connect(port)
    try:
        conversation.wait_for("session.created", timeout=30)
        if tools is not None:
            conversation.send({"type": "session.update", "session": {"type": "realtime", "tools": tools}})
            conversation.wait_for("session.updated", timeout=30)
        conversation.speak(to_pcm24k(load_audio(folder / request.file), 16000), silence_s=1.5)
        response = conversation.wait_for("response.done", timeout=120)[0].event.response
        for item in response.output:
            if item.type == "function_call" and outcome.called is None:
                outcome.called = item.name
                outcome.arguments = json.loads(item.arguments or "{}")
                call_id = item.call_id
            elif item.type == "message":
                outcome.reply = " ".join(part.transcript or part.text or "" for part in item.content)
        if outcome.called is not None and follow_up:
            output = OUTPUTS.get(outcome.called, ({"status": "done"}, ()))[0]
            item = {"type": "function_call_output", "call_id": call_id, "output": json.dumps(output)}
            conversation.send({"type": "conversation.item.create", "item": item})
            conversation.send({"type": "response.create"})
            answer = conversation.wait_for("response.done", timeout=120, count=2)[-1].event.response
            outcome.follow_up = " ".join(
                part.transcript or part.text or "" for item in answer.output if item.type == "message"
                for part in item.content
            )  # fmt: skip
    except Exception as error:  # one request's failure is reported, the run goes on
        outcome.error = f"{type(error).__name__}: {error}"
    finally:
        conversation.close()
    time.sleep(0.3)
    return outcome


def speech_end_to(turn: dict, event: str) -> float | None:
    """Speech end -> `event` from one turn's metrics (VAD wait plus end of turn -> event)."""
    wait, after = turn.get("vad_wait_ms"), turn.get(f"end_of_turn_to_{event}_ms")
    return None if wait is None or after is None else wait + after


def run_server(label: str, workdir: Path, flags: list[str], tree: Path = REPO) -> ServerProcess:
    print(f"starting the server: {label} ({' '.join(flags) or 'defaults'})", flush=True)
    return ServerProcess("realtime", workdir, *flags, tree=tree, suffix="_" + re.sub(r"\W+", "_", label))


def accuracy_pass(port: int, folder: Path, requests: list[Request], tools: list[dict]) -> list[Outcome]:
    outcomes = []
    for request in requests:
        outcome = ask(port, folder, request, tools, follow_up=True)
        mark = "ok " if outcome.call_right else "BAD"
        print(f"  {mark} {request.file} {request.text!r}: {outcome.called or 'no call'} {outcome.arguments} "
              f"| {outcome.follow_up or outcome.reply} {outcome.error}", flush=True)  # fmt: skip
        outcomes.append(outcome)
    return outcomes


def latency_pass(port: int, folder: Path, requests: list[Request], tools: list[dict] | None) -> None:
    for request in requests:
        ask(port, folder, request, tools, follow_up=False)


# --- the bare model ---------------------------------------------------------------------------------
# System-prompt guidance tried for the decision (appended to the default instructions).
GUIDANCE = {
    "none (the default)": "",
    "act": " You can act through the functions below: when the user asks for something one of them does, "
    "call it instead of explaining how; answer anything else yourself, in words.",
    "call only": " You can act: when the user asks for something that one of the functions below does, reply "
    "with that function call only. Answer anything else yourself, in words, without a function.",
}


def llama_handler(model_name: str) -> Any:
    import queue
    import threading

    from arguments_classes.chat_arguments import DEFAULT_SYSTEM_PROMPT
    from LLM.answer_loop import ReplyPacing
    from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler

    options = {"model_name": model_name, "pacing": ReplyPacing(4, 5), "init_chat_prompt": DEFAULT_SYSTEM_PROMPT}
    return LlamaCppLanguageModelHandler(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs=options)


def decision_margins(handler: Any, requests: list[Request], tools: list[dict], guidance: str) -> list[float]:
    """Each request text's call-opener margin (LLM/llama_tools.py) under one system prompt."""
    from LLM.tool_calls import ToolOffer

    offer = ToolOffer(tuple(tools))
    margins = []
    for request in requests:
        messages = [{"role": "system", "content": handler.init_chat_prompt + guidance},
                    {"role": "user", "content": request.text}]  # fmt: skip
        prompt = handler.prompt_tokens(messages, offer)
        handler.prefixes.prepare(handler.model, handler.tools_prefix(messages, offer, prompt))
        handler.tool_calls._decides_to_call(prompt, 0.0)
        margins.append(handler.tool_calls.last_margin)
    return margins


def separation(requests: list[Request], margins: list[float]) -> dict[str, Any]:
    """How well the margin tells the requests that need a tool from the others."""
    needs = [m for r, m in zip(requests, margins, strict=True) if r.tool != "none"]
    none = [m for r, m in zip(requests, margins, strict=True) if r.tool == "none"]
    best = max((sum((m >= t) == (r.tool != "none") for r, m in zip(requests, margins, strict=True)), -t)
               for t in sorted(margins))  # fmt: skip
    return {"needs": (min(needs), max(needs)), "none": (min(none), max(none)), "gap": min(needs) - max(none),
            "best": best[0]}  # fmt: skip


def bare_model(requests: list[Request], tools: list[dict], model_name: str) -> tuple[dict, dict]:
    """The LLM alone, on the request texts: the decision margins under each guidance, and
    first sentence without tools against call done with them."""
    from LLM.sentences import SentenceAggregator
    from LLM.tool_calls import FunctionCall, ToolOffer

    handler = llama_handler(model_name)
    margins = {label: separation(requests, decision_margins(handler, requests, tools, text))
               for label, text in GUIDANCE.items()}  # fmt: skip
    offer = ToolOffer(tuple(tools))
    figures: dict[str, list[float]] = {"first sentence, no tools": [], "call done, with tools": []}
    system = {"role": "system", "content": handler.init_chat_prompt}
    for request in requests:
        for with_tools in (False, True):
            messages = [system, {"role": "user", "content": request.text}]
            handler.prompt_tokens(messages)  # the template's work is not the model's
            began = time.perf_counter()
            aggregator = SentenceAggregator(first_clause_words=4, first_phrase_words=5)
            for piece in handler.generate(messages, tools=offer if with_tools else None):
                if isinstance(piece, FunctionCall):
                    if request.tool != "none":
                        figures["call done, with tools"].append((time.perf_counter() - began) * 1000)
                    break
                if aggregator.push(piece):
                    if not with_tools:
                        figures["first sentence, no tools"].append((time.perf_counter() - began) * 1000)
                    break
    return margins, figures


# --- report -------------------------------------------------------------------------------------------
def share(outcomes: list[Outcome], attribute: str) -> tuple[int, int]:
    values = [getattr(outcome, attribute) for outcome in outcomes]
    counted = [value for value in values if value is not None]
    return sum(bool(value) for value in counted), len(counted)


def percent(right: int, total: int) -> str:
    return f"{right}/{total} ({100 * right / total:.0f}%)" if total else "–"


def p50_p90(values: list[float]) -> str:
    return f"{fmt(percentile(values, 50))} / {fmt(percentile(values, 90))}"


def export_main(target: Path) -> Path:
    """The `main` branch as files (git archive), to run as today's server."""
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", "main"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default=str(SHARED), help="the tools test set (requests.tsv, tools.json, wavs)")
    parser.add_argument("--presets", default="default,fast,quality", help="presets whose accuracy is measured")
    parser.add_argument("--limit", type=int, default=0, help="only the first N requests (a quick look)")
    parser.add_argument("--no_latency", action="store_true", help="accuracy only")
    parser.add_argument("--main_tree", default=None, help="a checkout of today's s2s (default: export main)")
    parser.add_argument("--flags", default="", help="extra server flags for every server of this run")
    add_output_arguments(parser, RESULTS)
    args = parser.parse_args()
    folder = Path(args.folder)
    requests = read_requests(folder)
    if args.limit:
        requests = requests[: args.limit]
    tools = json.loads((folder / "tools.json").read_text())
    extra = args.flags.split()
    began = time.time()
    accuracy: dict[str, list[Outcome]] = {}
    latency: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as work:
        workdir = Path(work)
        for preset in [name.strip() for name in args.presets.split(",") if name.strip()]:
            server = run_server(preset, workdir, PRESETS[preset] + extra)
            try:
                before = len(server.turns())
                accuracy[preset] = accuracy_pass(server.port, folder, requests, tools)
                if preset == "default":
                    latency["with tools (this branch)"] = server.turns()[before:]
                    if not args.no_latency:
                        before = len(server.turns())
                        print("  sessions without tools (the server's built-ins offered)", flush=True)
                        latency_pass(server.port, folder, requests, None)
                        latency["no client tools, built-ins on (this branch)"] = server.turns()[before:]
            finally:
                server.stop()
        if not args.no_latency:
            for label, flags, tree in (
                ("no tools at all (this branch, --builtin_tools false)", ["--builtin_tools", "false"], REPO),
                ("no tools (--main_tree, default main)", [], Path(args.main_tree) if args.main_tree else None),
            ):
                tree = tree or export_main(workdir / "main")
                server = run_server(label, workdir, flags + extra, tree=tree)
                try:
                    latency_pass(server.port, folder, requests, None)
                    latency[label] = server.turns()
                finally:
                    server.stop()
    margins, bare = ({}, {}) if args.no_latency else bare_model(requests, tools, "qwen2.5-1.5b")
    report = render(args, requests, accuracy, latency, bare, margins, time.time() - began)
    print(report)
    save_results(args, RESULTS, report)
    return 0


def render(
    args: argparse.Namespace,
    requests: list[Request],
    accuracy: dict[str, list[Outcome]],
    latency: dict[str, list[dict]],
    bare: dict[str, list[float]],
    margins: dict[str, dict[str, Any]],
    seconds: float,
) -> str:
    command = "python benchmarks/tools.py " + " ".join(sys.argv[1:])
    lines = [
        "# Function calling: decisions, arguments, follow-ups and latency",
        "",
        f"`{command.strip()}` ({seconds / 60:.0f} min), under the shared lock on a quiet machine: "
        f"{machine_description()}.",
        "",
        machine_details(),
        "",
        f"{len(requests)} spoken requests (`../shared/audio/tools/`, {sum(r.tool != 'none' for r in requests)} "
        "need a tool), each in its own realtime session declaring the six tools of its `tools.json`, "
        "spoken through the SDK at real-time pace.",
        "",
        "## Accuracy",
        "",
        "| preset | right decision (tool or none) | right decision and arguments | follow-up uses the result | "
        "calls when none fits |",
        "|---|---|---|---|---|",
    ]
    for preset, outcomes in accuracy.items():
        negatives = [o for o in outcomes if o.request.tool == "none"]
        lines.append(
            f"| {preset} | {percent(*share(outcomes, 'decision_right'))} | {percent(*share(outcomes, 'call_right'))} "
            f"| {percent(*share(outcomes, 'follow_up_right'))} | {sum(o.called is not None for o in negatives)}"
            f"/{len(negatives)} |"
        )
    for preset, outcomes in accuracy.items():
        wrong = [o for o in outcomes if not o.call_right or o.follow_up_right is False or o.error]
        lines += ["", f"Wrong with `{preset}` ({len(wrong)}):", ""]
        for o in wrong:
            what = f"{o.called}({json.dumps(o.arguments)})" if o.called else "no call"
            said = o.follow_up or o.reply
            lines.append(f"- {o.request.file} \"{o.request.text}\" (expected {o.request.tool} "
                         f"{json.dumps(o.request.arguments)}): {what}; said \"{said}\" {o.error}".rstrip())  # fmt: skip
    if latency:
        lines += [
            "",
            "## Latency (ms, p50 / p90)",
            "",
            "From the server's turn metrics: speech end (the last voiced audio arrived) -> the call left the "
            "LLM, or -> the reply's first sentence.",
            "",
            "| sessions | speech end -> function call done (tool requests) | speech end -> first sentence "
            "(requests answered in words) |",
            "|---|---|---|",
        ]
        for label, turns in latency.items():
            calls = [speech_end_to(t, "tool_call") for t in turns if t.get("end_of_turn_to_tool_call_ms") is not None]
            words = [speech_end_to(t, "first_sentence") for t in turns
                     if t.get("end_of_turn_to_tool_call_ms") is None]  # fmt: skip
            lines.append(f"| {label} | {p50_p90(calls) if calls else '–'} | {p50_p90(words)} |")
    if bare:
        lines += ["", "The bare model (the LLM alone, on the request texts, ms p50 / p90):", ""]
        lines += [f"- {label}: {p50_p90(values)}" for label, values in bare.items()]
    if margins:
        lines += [
            "",
            "## The decision: call-opener margins under system-prompt guidance",
            "",
            "The best logit of a call's first tokens minus the best other first token, on the request texts "
            "(the bare 1.5B model). A call is made when the margin plus `--lm_tool_call_bias` is at least 0; "
            "the wider the gap between the two groups, the safer the bias.",
            "",
            "| guidance appended to the instructions | requests needing a tool | requests needing none | gap | "
            "right with the best threshold |",
            "|---|---|---|---|---|",
        ]
        for label, found in margins.items():
            lines.append(
                f"| {label} | {found['needs'][0]:+.2f} .. {found['needs'][1]:+.2f} | {found['none'][0]:+.2f} .. "
                f"{found['none'][1]:+.2f} | {found['gap']:+.2f} | {found['best']}/{len(requests)} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
