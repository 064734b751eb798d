"""Tools the assistant can call: the domain of function calling, below every stage.

A tool is a plain Python function whose type hints and docstring make its
JSON-schema declaration (`schema.py`); s2s ships a few built-ins (the time in
a named city, arithmetic: `builtins.py`), loads more from `--tools PATH.py`
(`loader.py`), and runs them in a worker process with a timeout
(`worker.py`), so a tool that hangs or crashes never stops a conversation.
This package imports nothing of the project: the stages, front doors and
sinks above it use it.
"""
