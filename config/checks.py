"""Checks and wording that make configuration errors one plain line, before any model loads.

`config.parse` parses; this module says what is wrong in words a user of the
command line understands: the flag's name (never "HfArgumentParser"), what it
expects, and what it got.  Everything here runs on the parsed dataclasses, so
a bad value fails in milliseconds rather than after every model has loaded
(or, for a generation option, on the first turn).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from collections.abc import Collection, Iterable
from typing import Any

from transformers import HfArgumentParser

LOG_LEVELS = ("debug", "info", "warning", "error")
WHISPER_BACKENDS = ("faster-whisper", "whisper", "whisper-mlx")

# Option names (stage prefix removed) and the values they take.  Generation
# options are passed straight to the model, which would reject them late.
POSITIVE = {
    "gen_beam_size", "gen_num_beams", "gen_max_tokens", "gen_max_new_tokens", "gen_repeat_penalty", "gen_speed",
    "n_ctx", "output_sample_rate", "max_loaded_models", "play_steps_s", "timeout_s", "tokens_per_second",
    "length_scale", "speaking_rate", "batch_size", "send_timeout_s",
}  # fmt: skip
NON_NEGATIVE = {
    "gen_temperature", "gen_min_new_tokens", "chat_size", "max_retries", "retry_backoff_s", "cpu_threads",
    "n_threads", "first_clause_words", "speculative_stt_ms", "audio_latency_s", "window_s", "noise_scale",
    "noise_scale_duration", "gen_noise_scale", "gen_noise_scale_w", "gen_sdp_ratio", "max_prompt_pad_length",
    "incremental_stt_ms", "context_s", "first_phrase_words", "first_piece_words", "audio_cushion_ms",
    "interleave_cover_ms", "first_audio_wait_ms", "realtime_playback_lead_ms", "threads", "max_words",
}  # fmt: skip
FRACTION = {"gen_top_p"}  # in (0, 1]
PORTS = {"recv_port", "send_port", "realtime_port"}


class FlagError(ValueError):
    """argparse's complaint about a flag, reworded for a user."""


class OneLineParser(HfArgumentParser):
    """HfArgumentParser that raises FlagError instead of printing the whole
    usage and exiting: a bad value is one line, like every other error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # HfArgumentParser adds a `--no_X` beside each flag that defaults to
        # True, with X's own help and "(default: False)": read as a second flag
        # doing the same, off by default.  Each says what it is instead.
        for action in self._actions:
            if isinstance(action, argparse._StoreFalseAction) and action.option_strings[0].startswith("--no_"):
                action.help = f"The same as --{action.dest} False."
                action.default = argparse.SUPPRESS  # the flag's own default stands (it comes first)

    def error(self, message: str) -> typing.NoReturn:
        raise FlagError(reword_argparse(message))

    def known_options(self) -> set[str]:
        return {action.dest for action in self._actions}


_KINDS = {"int": "a whole number", "float": "a number", "string_to_bool": "true or false"}


def reword_argparse(message: str) -> str:
    """ "argument --x/--x-alias: invalid float value: 'hot'" -> "--x expects a number, not 'hot'"."""
    invalid = re.match(r"argument (--[\w-]+)[^:]*: invalid (\w+) value: (.*)", message)
    if invalid:
        flag, kind, value = invalid.groups()
        return f"{flag} expects {_KINDS.get(kind, kind)}, not {value}"
    choice = re.match(r"argument (--[\w-]+)[^:]*: invalid choice: (.*)", message)
    if choice:
        return f"{choice.group(1)}: {choice.group(2)}"
    missing = re.match(r"argument (--[\w-]+)[^:]*: expected one argument", message)
    if missing:
        return f"{missing.group(1)} needs a value"
    if message.startswith("unrecognized arguments:"):
        return unknown_flags(message.removeprefix("unrecognized arguments:").split())
    return message


def unknown_flags(remaining: Iterable[str]) -> str:
    flags = [arg for arg in remaining if arg.startswith("-")] or list(remaining)
    return (
        f"unknown flag(s) {' '.join(flags)} for the chosen backends; "
        "`python s2s_pipeline.py --help` lists them (`--stt X --llm Y --tts Z --help` for other backends)"
    )


def unknown_keys(document: dict[str, Any], known: set[str], source: str) -> str | None:
    unknown = sorted(set(document) - known)
    if not unknown:
        return None
    return (
        f"unknown option(s) in {source}: {', '.join(unknown)} (keys are the flags' names without '--'; "
        "`python s2s_pipeline.py --help` lists them)"
    )


def given(name: str, document: dict[str, Any] | None, flags: list[str]) -> bool:
    """Whether the user set option `name` (not only its default), in the file or as a flag."""
    spellings = {f"--{name}", f"--{name.replace('_', '-')}"}
    in_flags = any(arg.split("=", 1)[0] in spellings for arg in flags)
    return in_flags or (document is not None and name in document)


# --- values -----------------------------------------------------------------------------


def _accepts(hint: Any, value: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(option, value) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return True  # containers and the like: the handler checks them


def _expected(hint: Any) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text", type(None): "null"}
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return " or ".join(names.get(option, getattr(option, "__name__", str(option))) for option in options)


def type_problems(arguments: Any) -> list[str]:
    """Values of the wrong type (a JSON "300" for a number); ints are fine where floats go."""
    hints = typing.get_type_hints(type(arguments))
    problems = []
    for item in dataclasses.fields(arguments):
        value = getattr(arguments, item.name)
        hint = hints.get(item.name, Any)
        if not _accepts(hint, value):
            problems.append(f"--{item.name} expects {_expected(hint)}, not {value!r}")
    return problems


def document_type_problems(document: dict[str, Any], classes: Iterable[type], source: str) -> list[str]:
    """JSON values must already have their option's type ("300" is not a
    number there); only flags are text by nature."""
    hints: dict[str, Any] = {}
    for cls in classes:
        hints.update(typing.get_type_hints(cls))
    return [
        f"{source}: {key} expects {_expected(hints[key])}, not {value!r}"
        for key, value in document.items()
        if key in hints and not _accepts(hints[key], value)
    ]


def range_problems(arguments: Any, prefix: str = "") -> list[str]:
    problems = []
    for item in dataclasses.fields(arguments):
        value = getattr(arguments, item.name)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        name = item.name.removeprefix(f"{prefix}_") if prefix else item.name
        flag = f"--{item.name}"
        if name in POSITIVE and not value > 0:
            problems.append(f"{flag} must be more than 0, not {value}")
        elif name in NON_NEGATIVE and value < 0:
            problems.append(f"{flag} must be 0 or more, not {value}")
        elif name in FRACTION and not 0 < value <= 1:
            problems.append(f"{flag} must be more than 0 and at most 1, not {value}")
        elif name in PORTS and not 0 <= value <= 65535:
            problems.append(f"{flag} must be a port number (0-65535; 0: any free port), not {value}")
    return problems


def whisper_languages() -> Collection[str]:
    """Whisper's language codes: faster-whisper's list where it is installed (the
    default STT, loaded anyway), else transformers' (its tokenizer module costs
    0.35 s of CPU to import, at every start that names a language)."""
    try:
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        return _LANGUAGE_CODES
    except ImportError:
        from transformers.models.whisper.tokenization_whisper import LANGUAGES

        return LANGUAGES


def whisper_language_problem(language: Any) -> str | None:
    """Whisper backends take a Whisper language code or 'auto'."""
    if language in ("auto", "", None):
        return None
    languages = whisper_languages()
    if language in languages:
        return None
    hint = f"did you mean {language.lower()!r}? " if str(language).lower() in languages else ""
    return (
        f"--language {language!r} is not a language code Whisper knows; {hint}"
        "use a code such as en, fr, de, nl, or 'auto' to detect it"
    )


def languages_code_problem(code: str) -> str | None:
    """One code of `--languages`: a Whisper language, not 'auto' (the list is
    what detection chooses among)."""
    if code == "auto":
        return "--languages: 'auto' is not a language; list the codes detection may choose, e.g. en,nl,cs"
    if code in whisper_languages():
        return None
    hint = f"did you mean {code.lower()!r}? " if code.lower() in whisper_languages() else ""
    return f"--languages: {code!r} is not a language code Whisper knows; {hint}use codes such as en, fr, de, nl"


def log_level_problem(level: Any) -> str | None:
    if isinstance(level, str) and level.lower() in LOG_LEVELS:
        return None
    return f"--log_level must be one of {', '.join(LOG_LEVELS)}, not {level!r}"


def value_problems(config: Any) -> list[str]:
    """Every wrong type or out-of-range value of a PipelineConfig, as flag-named lines."""
    parts = [
        (config.module, ""), (config.vad, ""), (config.socket_receiver, ""), (config.socket_sender, ""),
        (config.file_mode, ""), (config.local_audio, ""), (config.realtime, ""), (config.turn_taking, ""),
        (config.tools, ""), (config.stt, config.stt_backend.prefix), (config.llm, config.llm_backend.prefix),
        (config.tts, config.tts_backend.prefix),
    ]  # fmt: skip
    problems = [problem for arguments, _ in parts for problem in type_problems(arguments)]
    if problems:
        return problems  # ranges of values of the wrong type mean nothing
    problems = [problem for arguments, prefix in parts for problem in range_problems(arguments, prefix)]
    if config.stt_backend.name in WHISPER_BACKENDS:
        problems.append(whisper_language_problem(getattr(config.stt, "language", None)))
        for code in filter(None, (code.strip() for code in str(getattr(config.stt, "languages", "")).split(","))):
            problems.append(languages_code_problem(code))
    problems.append(log_level_problem(config.module.log_level))
    return [problem for problem in problems if problem]


def infer_mode(config: Any, mode_given: bool) -> str | None:
    """Without --mode, `--input_file/--output_file` mean file mode and
    `--list_devices` local mode (instead of silently starting a socket server
    that never exits); with a --mode they do not belong to, they are refused.
    Returns the problem, if any."""
    module = config.module
    wants_file = bool(config.file_mode.input_file or config.file_mode.output_file)
    wants_devices = bool(config.local_audio.list_devices)
    if wants_file and wants_devices:
        return "--list_devices is for --mode local, --input_file and --output_file for --mode file: pick one"
    if not mode_given:
        if wants_file:
            module.mode = "file"
        elif wants_devices:
            module.mode = "local"
        return None
    if wants_file and module.mode != "file":
        return f"--input_file and --output_file are for --mode file, not --mode {module.mode}"
    if wants_devices and module.mode != "local":
        return f"--list_devices is for --mode local, not --mode {module.mode}"
    return None
