"""Run the server's own tools in a worker process, each call with a timeout.

A tool is someone's Python: it may hang on a network call, loop, crash the
interpreter or print.  It runs in a child process (`python -m tools.worker`)
that loads the built-ins and the `--tools` files once and then answers calls
one line of JSON at a time; a call that takes longer than the timeout gets
an error output and the child is killed (and started again for the next
call), so a conversation is never stuck on a tool, and the stages' threads
never run foreign code.  The child's stdout carries only the protocol: what a
tool prints goes to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MAX_OUTPUT_BYTES = 64 * 1024  # what a tool may return (the realtime API's limit for client outputs too)
START_TIMEOUT_S = 60.0
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class ToolWorkerError(RuntimeError):
    """The worker could not start (a tools file failed to load); one line."""


def output_text(value: Any) -> str:
    """A tool's return value as the text the model reads: a string as it
    is, anything else as JSON; cut to MAX_OUTPUT_BYTES."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    data = text.encode("utf-8")
    if len(data) > MAX_OUTPUT_BYTES:
        text = data[:MAX_OUTPUT_BYTES].decode("utf-8", "ignore") + " [cut: output over 64 KB]"
    return text


def error_output(message: str) -> str:
    return json.dumps({"error": message})


class ToolWorker:
    """The parent's side: declarations of the tools the child loaded, and `call`."""

    def __init__(self, paths: list[str], builtins: bool = True, timeout_s: float = 5.0) -> None:
        self.paths = [str(Path(path).expanduser()) for path in paths]
        self.builtins = builtins
        self.timeout_s = timeout_s
        self.declarations: list[dict[str, Any]] = []
        self._process: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._ids = 0
        self.start()

    @property
    def names(self) -> set[str]:
        return {declaration["name"] for declaration in self.declarations}

    def start(self) -> None:
        """Start the child and read its declarations; raises ToolWorkerError
        (one line, naming the file) when a tools file cannot be loaded."""
        command = [sys.executable, "-m", "tools.worker", *(["--builtins"] if self.builtins else []), *self.paths]
        path = os.pathsep.join(filter(None, [str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        self._lines = queue.Queue()
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1, encoding="utf-8"
        )
        reader = threading.Thread(
            target=self._read, args=(self._process, self._lines), name="tool-worker-reader", daemon=True
        )
        reader.start()
        reply = self._next_reply(START_TIMEOUT_S)
        if reply is None or "declarations" not in reply:
            self.stop()
            problem = (reply or {}).get("error") or "the tool worker did not start"
            raise ToolWorkerError(problem)
        self.declarations = reply["declarations"]

    @staticmethod
    def _read(process: subprocess.Popen, lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)  # the child is gone

    def _next_reply(self, timeout_s: float) -> dict[str, Any] | None:
        """The child's next reply; None when `timeout_s` passed first, or
        {"gone": True} when the child is gone (its stdout closed)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return {"gone": True}
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue  # not ours (a library writing to stdout behind the worker's back)

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Run one tool and return its output text; a tool that fails, times
        out or takes the child down gives an error output, never an exception."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                try:
                    self.start()
                except ToolWorkerError as error:
                    return error_output(f"the tool worker could not start: {error}")
            self._ids += 1
            request = {"id": self._ids, "name": name, "arguments": arguments}
            try:
                assert self._process is not None and self._process.stdin is not None
                self._process.stdin.write(json.dumps(request) + "\n")
                self._process.stdin.flush()
            except (OSError, ValueError):
                self.stop()
                return error_output(f"the tool {name} could not be run (the worker is gone)")
            began = time.monotonic()
            while True:
                reply = self._next_reply(self.timeout_s - (time.monotonic() - began))
                if reply is None:
                    self.stop()
                    logger.warning("tool %s did not finish within %.1f s: stopped", name, self.timeout_s)
                    return error_output(f"the tool {name} did not finish within {self.timeout_s:g} s")
                if reply.get("gone"):
                    self.stop()
                    return error_output(f"the tool {name} crashed")
                if reply.get("id") == self._ids:
                    return str(reply.get("output", ""))

    def submit(self, name: str, arguments: dict[str, Any], done: Callable[[str], None]) -> None:
        """Run a call in a thread of its own and hand its output to `done`."""

        def run() -> None:
            done(self.call(name, arguments))

        threading.Thread(target=run, name=f"tool-{name}", daemon=True).start()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


# --- the child -------------------------------------------------------------------------------
def serve(functions: dict[str, Callable[..., Any]], replies: Any) -> None:
    """Answer calls from stdin until it closes."""
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except json.JSONDecodeError:
            continue
        function = functions.get(request.get("name"))
        if function is None:
            output = error_output(f"no tool named {request.get('name')!r}")
        else:
            try:
                output = output_text(function(**(request.get("arguments") or {})))
            except TypeError as error:
                output = error_output(f"wrong arguments for {request['name']}: {error}")
            except Exception as error:
                output = error_output(f"{type(error).__name__}: {error}")
        replies.write(json.dumps({"id": request.get("id"), "output": output}) + "\n")
        replies.flush()


def main(argv: list[str]) -> int:
    import signal

    # Ctrl-C in a terminal reaches the whole process group: the server stops the
    # worker itself (it closes the worker's stdin, or kills it), without a traceback here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = sys.stdout
    sys.stdout = sys.stderr  # what tools print must not mix with the replies
    from tools.builtins import BUILTIN_TOOLS
    from tools.loader import ToolsFileError, load_tools
    from tools.schema import function_declaration

    functions: dict[str, Callable[..., Any]] = {}
    if "--builtins" in argv:
        functions.update({function.__name__: function for function in BUILTIN_TOOLS})
    try:
        for path in (arg for arg in argv if arg != "--builtins"):
            functions.update(load_tools(path))  # a file's tool replaces a built-in of the same name
    except ToolsFileError as error:
        replies.write(json.dumps({"error": str(error)}) + "\n")
        replies.flush()
        return 2
    declarations = [function_declaration(function) for function in functions.values()]
    replies.write(json.dumps({"declarations": declarations}) + "\n")
    replies.flush()
    serve(functions, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
