"""Function declarations: made from Python functions, checked when a client sends them.

A declaration is the Realtime API's function tool, a plain dict:
`{"type": "function", "name": ..., "description": ..., "parameters": <JSON schema>}`.
s2s writes them for its own tools from the function's type hints (the
parameters' types, required unless they have a default) and its docstring
(the first paragraph describes the tool, an `Args:` section or `:param x:`
lines describe the parameters), so a tool is written once, as ordinary
Python.  Declarations a client sends are checked here before any model sees
them, and so are the arguments a model produced, against the schema.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# JSON-schema types a parameter may have.
JSON_TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")
_PYTHON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


class ToolDefinitionError(ValueError):
    """A function that cannot be a tool (a parameter without a type hint, a
    type JSON cannot carry); the message names the function and parameter."""


# --- from Python -----------------------------------------------------------------------------
def parameter_docs(doc: str) -> dict[str, str]:
    """Parameter descriptions from a docstring: Google style (`Args:` then
    `name: text` or `name (type): text`) or reST (`:param name: text`)."""
    described: dict[str, str] = {}
    for match in re.finditer(r":param\s+(?:\w+\s+)?(\w+):\s*(.+)", doc):
        described[match.group(1)] = match.group(2).strip()
    section = re.search(r"^\s*(?:Args|Arguments|Parameters):\s*\n((?:\s+.+\n?)+)", doc, re.MULTILINE)
    if section:
        current = None
        for line in section.group(1).splitlines():
            entry = re.match(r"\s+(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)", line)
            if entry:
                current = entry.group(1)
                described[current] = entry.group(2).strip()
            elif current and line.strip():
                described[current] = f"{described[current]} {line.strip()}".strip()
    return described


def description_of(doc: str) -> str:
    """The docstring's first paragraph, on one line."""
    first = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0]
    return " ".join(first.split())


def type_schema(annotation: Any, where: str) -> dict[str, Any]:
    """The JSON schema of one Python type hint (str, int, float, bool,
    Literal[...], list[X], dict, X | None)."""
    if annotation in _PYTHON_TYPES:
        return {"type": _PYTHON_TYPES[annotation]}
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Literal:
        kinds = {type(value) for value in arguments}
        if len(kinds) != 1 or next(iter(kinds)) not in _PYTHON_TYPES:
            raise ToolDefinitionError(f"{where}: Literal values must all be str, int, float or bool")
        return {"type": _PYTHON_TYPES[next(iter(kinds))], "enum": list(arguments)}
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set):
        item = arguments[0] if arguments else str
        return {"type": "array", "items": type_schema(item, where)}
    if origin is dict or annotation is dict:
        return {"type": "object"}
    if origin in (typing.Union, types.UnionType):
        rest = [argument for argument in arguments if argument is not type(None)]
        if len(rest) == 1:
            return type_schema(rest[0], where)
    raise ToolDefinitionError(f"{where}: type {annotation!r} cannot be a tool parameter (use str, int, float, "
                              "bool, Literal[...], list[...] or dict)")  # fmt: skip


def function_declaration(function: Callable[..., Any]) -> dict[str, Any]:
    """The Realtime API declaration of a plain Python function.

    Every parameter needs a type hint (a model must know what to pass);
    one without a default is required.  Raises ToolDefinitionError naming
    the function and the parameter otherwise.
    """
    name = function.__name__
    if not NAME_PATTERN.match(name):
        raise ToolDefinitionError(f"{name}: a tool name is 1-64 letters, digits, '_' or '-'")
    try:
        hints = typing.get_type_hints(function)
    except Exception as error:  # a hint that names something undefined
        raise ToolDefinitionError(f"{name}: its type hints cannot be read ({error})") from None
    doc = inspect.getdoc(function) or ""
    if not doc.strip():
        raise ToolDefinitionError(f"{name}: a tool needs a docstring (it tells the model what the tool does)")
    described = parameter_docs(doc)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ToolDefinitionError(f"{name}: *{parameter.name} cannot be a tool parameter")
        if parameter.name not in hints:
            raise ToolDefinitionError(f"{name}: parameter {parameter.name!r} has no type hint")
        schema = type_schema(hints[parameter.name], f"{name}({parameter.name})")
        if parameter.name in described:
            schema["description"] = described[parameter.name]
        properties[parameter.name] = schema
        if parameter.default is inspect.Parameter.empty:
            required.append(parameter.name)
    return {
        "type": "function",
        "name": name,
        "description": description_of(doc),
        "parameters": {"type": "object", "properties": properties, "required": required},
    }


# --- from a client ---------------------------------------------------------------------------
def declaration_problem(declaration: Any) -> str | None:
    """Why a client's tool cannot be offered to the model (None: it can):
    a function tool needs a valid name, and its `parameters` a JSON schema of
    an object whose properties are schemas and whose `required` names them."""
    if not isinstance(declaration, dict):
        return "a tool must be an object"
    if declaration.get("type") != "function":
        return f"tool type {declaration.get('type')!r} is not supported (only 'function')"
    name = declaration.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return f"tool name {name!r} must be 1-64 letters, digits, '_' or '-'"
    description = declaration.get("description")
    if description is not None and not isinstance(description, str):
        return f"tool {name!r}: description must be a string"
    parameters = declaration.get("parameters")
    if parameters is None:
        return None  # no parameters at all
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        return f"tool {name!r}: parameters must be a JSON schema of type 'object'"
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError as error:
        where = "/".join(str(part) for part in error.path) or "parameters"
        return f"tool {name!r}: invalid parameters schema at {where}: {error.message}"
    properties = parameters.get("properties", {})
    missing = [key for key in parameters.get("required", []) if key not in properties]
    if missing:
        return f"tool {name!r}: required parameters {missing} are not among its properties"
    return None


def arguments_problem(parameters: dict[str, Any] | None, arguments: Any) -> str | None:
    """Why `arguments` (parsed JSON) do not match the tool's parameters
    schema (None: they do)."""
    from jsonschema import Draft202012Validator

    if not isinstance(arguments, dict):
        return "arguments must be a JSON object"
    if not parameters:
        return None
    error = next(iter(Draft202012Validator(parameters).iter_errors(arguments)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.path)
    return f"{where + ': ' if where else ''}{error.message}"


def chat_completions_tool(declaration: dict[str, Any]) -> dict[str, Any]:
    """The same tool in the chat-completions format (OpenAI's chat API and
    the models' chat templates): `{"type": "function", "function": {...}}`."""
    function = {"name": declaration["name"]}
    if declaration.get("description"):
        function["description"] = declaration["description"]
    function["parameters"] = declaration.get("parameters") or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}
