from dataclasses import dataclass, field


@dataclass
class ToolsArguments:
    """Tools the server runs itself (socket, local and file modes; realtime sessions that declare none)."""

    tools: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Python files whose public functions become tools the assistant may call (type hints and "
            "docstring make each one's schema); they run in a worker process. Several files: --tools a.py b.py."
        },
    )
    builtin_tools: bool = field(
        default=False,
        metadata={
            "help": "Offer the built-in tools: get_time (the date and time here or in a named city) and calculate "
            "(exact arithmetic). Off by default: under a system prompt that asks for long answers the default "
            "1.5B model called them for questions that need no tool (README, Tools)."
        },
    )
    tool_timeout_s: float = field(
        default=5.0, metadata={"help": "A tool call running longer than this is stopped and answered with an error."}
    )
