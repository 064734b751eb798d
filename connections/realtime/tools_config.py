"""`tools` and `tool_choice` from a client (session.update, response.create), checked.

A tool with an invalid schema, two tools of one name, or a `tool_choice`
that names no declared tool is refused with one `error` event naming it;
the session's tools stay as they were.  Checked declarations are plain dicts
in the Realtime API's format (`tools/schema.py`), the form the session keeps
and the LLM offers.
"""

from __future__ import annotations

from typing import Any

from connections.realtime.events import ClientEventError
from LLM.tool_calls import ToolChoice
from tools.schema import declaration_problem
from tools.worker import MAX_OUTPUT_BYTES

__all__ = ["MAX_OUTPUT_BYTES", "checked_tool_choice", "checked_tools"]


def _event_id(event: Any) -> str | None:
    return getattr(event, "event_id", None)


def checked_tools(event: Any, tools: list[Any] | None, param: str) -> list[dict[str, Any]]:
    """The function tools a client declared, as dicts; raises ClientEventError
    naming the first tool that cannot be offered."""
    declarations: list[dict[str, Any]] = []
    for index, tool in enumerate(tools or []):
        declaration = tool.model_dump(exclude_unset=True) if hasattr(tool, "model_dump") else dict(tool)
        declaration.setdefault("type", "function")
        problem = declaration_problem(declaration)
        if problem is not None:
            code = "unsupported" if declaration.get("type") != "function" else "invalid_value"
            raise ClientEventError(code, f"{param}[{index}]: {problem}", _event_id(event), f"{param}[{index}]")
        declarations.append(
            {key: declaration[key] for key in ("type", "name", "description", "parameters") if key in declaration}
        )
    names = [declaration["name"] for declaration in declarations]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ClientEventError(
            "invalid_value", f"{param}: tool names must be unique ({', '.join(repeated)})", _event_id(event), param
        )
    return declarations


def checked_tool_choice(event: Any, value: Any, declarations: list[dict[str, Any]], param: str) -> Any:
    """The tool_choice as the session keeps it ("auto", "none", "required" or
    {"type": "function", "name": ...}); a named function must be declared."""
    try:
        choice = ToolChoice.parse(value.model_dump() if hasattr(value, "model_dump") else value)
    except ValueError as error:
        raise ClientEventError("invalid_value", f"{param}: {error}", _event_id(event), param) from None
    if choice.mode == "function" and choice.name not in {declaration["name"] for declaration in declarations}:
        raise ClientEventError(
            "invalid_value",
            f"{param} names the function {choice.name!r}, which is not among the declared tools",
            _event_id(event),
            param,
        )
    return choice.api_value()
