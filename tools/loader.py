"""`--tools PATH.py`: a user's plain Python functions become tools.

Every public function defined in the file (not imported into it, not named
with a leading underscore) is a tool; its type hints and docstring are its
declaration (`schema.function_declaration`).  A file that does not import,
defines no function, or has a function that cannot be declared is refused
with one line naming the file and the problem, before any model loads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from tools.schema import ToolDefinitionError, function_declaration


class ToolsFileError(ValueError):
    """A `--tools` file that cannot give tools; the message is one line naming it."""


def import_file(path: str | Path) -> ModuleType:
    """Import a Python file by path, under a module name of its own."""
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise ToolsFileError(f"--tools {path}: no such file")
    if file.suffix != ".py":
        raise ToolsFileError(f"--tools {path}: not a Python file (.py)")
    name = f"s2s_tools_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ToolsFileError(f"--tools {path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as error:  # SyntaxError, ImportError, anything its top level raises, even SystemExit
        sys.modules.pop(name, None)
        frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == str(file)]
        line = getattr(error, "lineno", None) or (frames[-1].lineno if frames else None)
        where = f", line {line}" if line else ""
        detail = " ".join(str(error).split()) or type(error).__name__
        raise ToolsFileError(f"--tools {path}{where}: {type(error).__name__}: {detail}") from None
    return module


def functions_of(module: ModuleType) -> list[Callable[..., Any]]:
    """The public functions a module defines itself, in the file's order."""
    found = [
        value
        for name, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module.__name__ and not name.startswith("_")
    ]
    return sorted(found, key=lambda function: function.__code__.co_firstlineno)


def load_tools(path: str | Path) -> dict[str, Callable[..., Any]]:
    """The tools of one file, by name; raises ToolsFileError (one line)."""
    functions = functions_of(import_file(path))
    if not functions:
        raise ToolsFileError(f"--tools {path}: defines no public function")
    for function in functions:
        try:
            function_declaration(function)
        except ToolDefinitionError as error:
            raise ToolsFileError(f"--tools {path}: {error}") from None
    return {function.__name__: function for function in functions}
