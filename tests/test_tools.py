"""The tools domain without models: schemas from Python functions, the built-ins,
`--tools` files, and the worker process that runs them with a timeout."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import textwrap
import time
import zoneinfo
from typing import Literal

import pytest

from tests.conftest import REPO
from tools.builtins import calculate, get_time, zone_of
from tools.loader import ToolsFileError, load_tools
from tools.schema import (
    ToolDefinitionError,
    arguments_problem,
    chat_completions_tool,
    declaration_problem,
    function_declaration,
)
from tools.worker import ToolWorker, ToolWorkerError


def book_table(restaurant: str, people: int, when: Literal["lunch", "dinner"] = "dinner", vegan: bool = False) -> str:
    """Book a table at a restaurant.

    Args:
        restaurant: Where to book.
        people: How many seats.
    """
    return "booked"


def test_a_typed_docstringed_function_is_its_own_declaration():
    declaration = function_declaration(book_table)
    assert declaration["name"] == "book_table" and declaration["type"] == "function"
    assert declaration["description"] == "Book a table at a restaurant."
    parameters = declaration["parameters"]
    assert parameters["required"] == ["restaurant", "people"]
    assert parameters["properties"]["restaurant"] == {"type": "string", "description": "Where to book."}
    assert parameters["properties"]["people"]["type"] == "integer"
    assert parameters["properties"]["when"] == {"type": "string", "enum": ["lunch", "dinner"]}
    assert parameters["properties"]["vegan"] == {"type": "boolean"}
    assert declaration_problem(declaration) is None
    assert chat_completions_tool(declaration)["function"]["name"] == "book_table"


def test_a_function_without_hints_or_docstring_cannot_be_a_tool():
    def untyped(city):
        """Weather."""

    def undocumented(city: str) -> str:
        return city

    with pytest.raises(ToolDefinitionError, match="'city' has no type hint"):
        function_declaration(untyped)
    with pytest.raises(ToolDefinitionError, match="docstring"):
        function_declaration(undocumented)


@pytest.mark.parametrize(
    ("declaration", "problem"),
    [
        ({"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "strin"}}}},
         "invalid parameters schema"),
        ({"type": "function", "name": "bad name!", "parameters": {}}, "must be 1-64"),
        ({"type": "function", "name": "f", "parameters": {"type": "array"}}, "of type 'object'"),
        ({"type": "function", "name": "f", "parameters": {"type": "object", "required": ["x"]}}, "not among"),
        ({"type": "mcp", "name": "f"}, "not supported"),
    ],
)  # fmt: skip
def test_a_bad_declaration_is_named(declaration, problem):
    assert problem in declaration_problem(declaration)


def test_arguments_are_checked_against_the_schema():
    parameters = function_declaration(book_table)["parameters"]
    assert arguments_problem(parameters, {"restaurant": "Roma", "people": 2}) is None
    assert "required" in arguments_problem(parameters, {"restaurant": "Roma"})
    assert "'brunch' is not one of" in arguments_problem(
        parameters, {"restaurant": "Roma", "people": 2, "when": "brunch"}
    )
    assert arguments_problem(parameters, {"restaurant": "Roma", "people": "two"})


def test_get_time_tells_the_time_of_a_named_city_by_its_time_zone():
    for city, zone in [("Tokyo", "Asia/Tokyo"), ("New York", "America/New_York"), ("Paris, France", "Europe/Paris"),
                       ("San Francisco", "America/Los_Angeles"), ("sydney", "Australia/Sydney")]:  # fmt: skip
        assert zone_of(city) == zone, city
        told = json.loads(get_time(city))
        now = datetime.datetime.now(zoneinfo.ZoneInfo(zone))
        hour = int(told["time"].split(":")[0]) % 12
        assert hour in {now.hour % 12, (now.hour - 1) % 12}, (city, told, now)  # a minute may have turned the hour
        assert told["time_zone"] == zone
    assert "error" in json.loads(get_time("Atlantis"))
    here = json.loads(get_time())
    assert here["place"] == "here" and str(datetime.datetime.now().day) in here["date"]


@pytest.mark.parametrize(
    ("expression", "result"),
    [("17 * 23", 391), ("17 times 23", 391), ("(4 + 5) / 3", 3), ("2 ** 10", 1024), ("1/3", 0.3333333333),
     ("12 squared", 144), ("sqrt(81)", 9), ("-7 + 2", -5), ("1,000 * 3", 3000)],
)  # fmt: skip
def test_calculate_is_exact_arithmetic(expression, result):
    assert json.loads(calculate(expression))["result"] == result


def test_calculate_refuses_what_is_not_arithmetic():
    for expression in ("__import__('os').system('true')", "9 ** 9 ** 9", "1 / 0", "open('x')"):
        answer = json.loads(calculate(expression))
        assert "error" in answer and "result" not in answer, expression


def test_a_tools_file_loads_its_own_public_functions(tmp_path):
    path = tmp_path / "home.py"
    path.write_text(
        textwrap.dedent('''
        from os.path import join  # imported: not a tool

        def switch_light(room: str, on: bool) -> str:
            """Switch a light."""
            return f"{room} {'on' if on else 'off'}"

        def _helper() -> None:
            """Private."""
    ''')
    )
    assert list(load_tools(path)) == ["switch_light"]


@pytest.mark.parametrize(
    ("source", "problem"),
    [("def f(x: int) -> int:\n    return x\n", "docstring"),
     ("def f(x):\n    '''Doc.'''\n", "has no type hint"),
     ("import no_such_module_here\n", "ModuleNotFoundError"),
     ("def f(:\n", "SyntaxError"),
     ("x = 1\n", "defines no public function")],
)  # fmt: skip
def test_a_bad_tools_file_is_one_line_naming_it(tmp_path, source, problem):
    path = tmp_path / "bad.py"
    path.write_text(source)
    with pytest.raises(ToolsFileError) as raised:
        load_tools(path)
    assert problem in str(raised.value) and str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_the_worker_runs_tools_with_a_timeout_and_survives_them(tmp_path):
    path = tmp_path / "tools.py"
    path.write_text(
        textwrap.dedent('''
        import os, time

        def slow(seconds: float) -> str:
            """Sleep."""
            time.sleep(seconds)
            return "slept"

        def noisy(name: str) -> dict:
            """Print, then answer."""
            print("this goes to stderr, not into the protocol")
            return {"hello": name}

        def crash() -> str:
            """Take the worker down."""
            os._exit(3)

        def fail() -> str:
            """Raise."""
            raise ValueError("no such thing")
    ''')
    )
    worker = ToolWorker([str(path)], builtins=True, timeout_s=2.0)
    try:
        assert {"get_time", "calculate", "slow", "noisy", "crash", "fail"} == worker.names
        assert json.loads(worker.call("calculate", {"expression": "17 * 23"}))["result"] == 391
        assert json.loads(worker.call("noisy", {"name": "Ann"})) == {"hello": "Ann"}
        assert "ValueError: no such thing" in worker.call("fail", {})
        assert "wrong arguments" in worker.call("noisy", {"nom": "Ann"})
        began = time.monotonic()
        assert "did not finish within 2 s" in worker.call("slow", {"seconds": 30})
        assert time.monotonic() - began < 10
        assert "crashed" in worker.call("crash", {})
        assert worker.call("slow", {"seconds": 0}) == "slept"  # a new worker took over
        outputs: list[str] = []
        worker.submit("calculate", {"expression": "2 + 2"}, outputs.append)
        deadline = time.monotonic() + 10
        while not outputs and time.monotonic() < deadline:
            time.sleep(0.01)
        assert json.loads(outputs[0])["result"] == 4
    finally:
        worker.stop()


def test_a_worker_whose_file_fails_does_not_start(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("def f(x):\n    '''Doc.'''\n")
    with pytest.raises(ToolWorkerError, match="has no type hint"):
        ToolWorker([str(path)], builtins=True)


@pytest.mark.parametrize(
    ("source", "problem"),
    [("def f(x):\n    '''Doc.'''\n", "has no type hint"), ("import no_such_module_here\n", "ModuleNotFoundError")],
)
def test_the_cli_refuses_a_bad_tools_file_with_one_line_and_status_2(tmp_path, source, problem):
    path = tmp_path / "tools.py"
    path.write_text(source)
    result = subprocess.run(
        [sys.executable, "s2s_pipeline.py", "--mode", "socket", "--recv_port", "0", "--send_port", "0",
         "--tools", str(path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("s2s:")]
    assert len(lines) == 1 and lines[0].startswith("s2s: error: --tools") and problem in lines[0], result.stderr
