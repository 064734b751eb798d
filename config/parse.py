"""Turn CLI flags or one JSON file into the pipeline's configuration.

Parsing is in two passes: the first reads only `--stt/--llm/--tts` (and the
mode), the second builds an `HfArgumentParser` over the chosen backends'
dataclasses alone.  That lets every STT backend use the plain `stt_` prefix
(`--stt_model_name` means the model of whichever STT you picked) without
their flag names colliding, and a flag that belongs to no chosen backend is an
error instead of being silently ignored.  A JSON file gives the defaults and
flags after it override them (`config.json --log_level debug`); values are
checked (config/checks.py) before any model loads.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arguments_classes.file_mode_arguments import FileModeArguments
from arguments_classes.local_audio_arguments import LocalAudioArguments
from arguments_classes.module_arguments import ModuleArguments
from arguments_classes.realtime_arguments import RealtimeArguments, TurnTakingArguments
from arguments_classes.socket_arguments import SocketReceiverArguments, SocketSenderArguments
from arguments_classes.tools_arguments import ToolsArguments
from arguments_classes.vad_arguments import VADHandlerArguments
from audio.echo_cancel import ENGINES as ECHO_CANCELLERS
from config.checks import (
    FlagError,
    OneLineParser,
    document_type_problems,
    given,
    infer_mode,
    unknown_flags,
    unknown_keys,
    value_problems,
)
from config.registry import Backend, lookup
from models.packaged import gguf_name_problem, whisper_name_problem
from utils.net import is_loopback, resolution_problem

MODES = ("socket", "local", "file", "realtime")
COMMON_ARGUMENTS: tuple[type, ...] = (
    ModuleArguments,
    VADHandlerArguments,
    SocketReceiverArguments,
    SocketSenderArguments,
    FileModeArguments,
    LocalAudioArguments,
    RealtimeArguments,
    TurnTakingArguments,
    ToolsArguments,
)


class ConfigError(ValueError):
    """A configuration the pipeline cannot run; the message names the culprit."""


@dataclass
class PipelineConfig:
    module: ModuleArguments
    vad: VADHandlerArguments
    socket_receiver: SocketReceiverArguments
    socket_sender: SocketSenderArguments
    file_mode: FileModeArguments
    local_audio: LocalAudioArguments
    realtime: RealtimeArguments
    turn_taking: TurnTakingArguments
    tools: ToolsArguments
    stt_backend: Backend
    llm_backend: Backend
    tts_backend: Backend
    stt: Any
    llm: Any
    tts: Any

    def stage_kwargs(self, stage: str) -> dict[str, Any]:
        """The chosen backend's own arguments, as its setup() takes them (the
        pipeline builder adds what the stage takes from the global flags)."""
        backend = getattr(self, f"{stage}_backend")
        return handler_kwargs(getattr(self, stage), backend.prefix)


def handler_kwargs(arguments: Any, prefix: str) -> dict[str, Any]:
    """Arguments dataclass -> setup() kwargs: `<prefix>_` stripped from names,
    `<prefix>_gen_*` collected into `gen_kwargs` for the model's generate call."""
    kwargs: dict[str, Any] = {}
    gen_kwargs: dict[str, Any] = {}
    for item in dataclasses.fields(arguments):
        value = getattr(arguments, item.name)
        name = item.name.removeprefix(f"{prefix}_")
        if name.startswith("gen_"):
            gen_kwargs[name.removeprefix("gen_")] = value
        else:
            kwargs[name] = value
    kwargs["gen_kwargs"] = gen_kwargs
    return kwargs


def _split_config_file(argv: list[str]) -> tuple[dict[str, Any] | None, str, list[str]]:
    """`config.json [flags...]` -> (the JSON document, its name, the flags); flags alone -> (None, "", argv)."""
    if not argv or not argv[0].endswith(".json"):
        return None, "", argv
    path = Path(argv[0])
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"config file {path} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path} must hold one JSON object")
    return document, str(path), argv[1:]


def _parse(classes: tuple[type, ...], document: dict[str, Any] | None, flags: list[str], first: bool = False) -> list:
    """Parse flags over defaults taken from the JSON document: flags override the file.
    The first pass (module arguments only) leaves other flags and --help for the second."""
    parser = OneLineParser(classes)
    if document is not None:
        known = parser.known_options()
        parser.set_defaults(**{key: value for key, value in document.items() if key in known})
    if first:
        flags = [arg for arg in flags if arg not in ("-h", "--help")]
    try:
        *parsed, remaining = parser.parse_args_into_dataclasses(args=flags, return_remaining_strings=True)
    except FlagError as error:
        raise ConfigError(str(error)) from None
    if remaining and not first:
        raise ConfigError(unknown_flags(remaining))
    return parsed


def _apply_mac_preset(module: ModuleArguments) -> None:
    """The seed's `--local_mac_optimal_settings`: MLX backends, local mode."""
    if not module.local_mac_optimal_settings:
        return
    module.mode = "local"
    module.stt, module.llm, module.tts = "whisper-mlx", "mlx-lm", "melo"
    module.device = "mps"


def parse_config(argv: list[str]) -> PipelineConfig:
    """Parse CLI flags, or one JSON file path optionally followed by flags that
    override it, into a validated PipelineConfig.

    Raises ConfigError, with one line naming the flag, for unknown backends,
    unknown keys or flags, and values of the wrong type or range.  `--help`
    prints the chosen backends' flags and exits.
    """
    document, source, flags = _split_config_file(argv)
    (module,) = _parse((ModuleArguments,), document, flags, first=True)
    _apply_mac_preset(module)
    try:
        backends = [lookup(stage, getattr(module, stage)) for stage in ("stt", "llm", "tts")]
    except ValueError as error:
        raise ConfigError(str(error)) from None

    classes = (*COMMON_ARGUMENTS, *(b.arguments_class for b in backends))
    if document is not None:
        problems = [unknown_keys(document, OneLineParser(classes).known_options(), source)]
        problems += document_type_problems(document, classes, source)
        if any(problems):
            raise ConfigError("; ".join(problem for problem in problems if problem))
    parsed = _parse(classes, document, flags)
    module, vad, receiver, sender, file_mode, local_audio, realtime, turn_taking, tools, stt, llm, tts = parsed
    _apply_mac_preset(module)

    if module.device:
        for arguments, backend in ((stt, backends[0]), (llm, backends[1]), (tts, backends[2])):
            device_field = f"{backend.prefix}_device"
            if hasattr(arguments, device_field):
                setattr(arguments, device_field, module.device)

    if realtime.api_key is None:
        realtime.api_key = os.environ.get("S2S_API_KEY") or None
    config = PipelineConfig(
        module, vad, receiver, sender, file_mode, local_audio, realtime, turn_taking, tools, *backends, stt, llm, tts
    )
    apply_preset(config, set(document or {}) | flags_given(flags))
    mode_given = given("mode", document, flags) or module.local_mac_optimal_settings
    problem = infer_mode(config, mode_given)
    if problem:
        raise ConfigError(problem)
    validate(config)
    return config


def flags_given(argv: list[str]) -> set[str]:
    """Argument names present on a command line (`--lm-model-name=x` -> `lm_model_name`)."""
    return {arg[2:].split("=", 1)[0].replace("-", "_") for arg in argv if arg.startswith("--")}


def apply_preset(config: PipelineConfig, explicit: set[str]) -> None:
    """Fill in `--preset`'s settings (config/presets.py) for the chosen backends,
    except the arguments named in `explicit` (given as flags or JSON keys):
    what the user says wins over what the preset would choose.  A preset model
    whose packages are missing is a configuration error naming the pip command,
    before any model loads."""
    from config.presets import MODEL_ARGUMENTS, PRESETS
    from models.packaged import install_hint

    name = config.module.preset
    if name is None:
        return
    if name not in PRESETS:
        raise ConfigError(f"--preset must be one of {', '.join(PRESETS)} (or left out), not {name!r}")
    owners = {
        "module": config.module,
        config.stt_backend.name: config.stt,
        config.llm_backend.name: config.llm,
        config.tts_backend.name: config.tts,
    }
    for owner, settings in PRESETS[name].items():
        arguments = owners.get(owner)
        for key, value in settings.items() if arguments is not None else ():
            if key in explicit:
                continue
            setattr(arguments, key, value)
            hint = install_hint(value) if key in MODEL_ARGUMENTS else None
            if hint:
                raise ConfigError(f"--preset {name} uses the model {value!r}, which is not installed: {hint}")


def tls_files_problem(certfile: str, keyfile: str) -> str | None:
    """Why the certificate and key cannot serve TLS (None: they can), naming
    the file: checked before any model loads, not when the server starts."""
    for flag, path in (("--ssl_certfile", certfile), ("--ssl_keyfile", keyfile)):
        file = Path(path).expanduser()
        if not file.is_file():
            return f"{flag} {path}: no such file"
        if not os.access(file, os.R_OK):
            return f"{flag} {path}: not readable (permission denied)"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(Path(certfile).expanduser()), str(Path(keyfile).expanduser()))
    except ssl.SSLError as error:
        reason = error.reason or error.strerror or str(error)
        return (
            f"--ssl_certfile {certfile} and --ssl_keyfile {keyfile} cannot serve TLS ({reason}): "
            "both must be PEM files, the key matching the certificate"
        )
    except OSError as error:
        return f"--ssl_certfile {certfile} / --ssl_keyfile {keyfile}: {error.strerror or error}"
    return None


def listening_hosts(config: PipelineConfig) -> list[tuple[str, str]]:
    """The addresses the chosen mode listens on, each with its flag."""
    if config.module.mode == "realtime":
        return [("realtime_host", config.realtime.realtime_host)]
    if config.module.mode == "socket":
        return [("recv_host", config.socket_receiver.recv_host), ("send_host", config.socket_sender.send_host)]
    return []


def validate(config: PipelineConfig) -> None:
    module, vad = config.module, config.vad
    problems = value_problems(config)
    if problems:
        raise ConfigError("; ".join(problems))
    if module.mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, not {module.mode!r}")
    if module.mode == "file" and not (config.file_mode.input_file and config.file_mode.output_file):
        raise ConfigError("--mode file needs --input_file and --output_file")
    model_problem = None
    if config.llm_backend.name == "llama_cpp":
        model_problem = gguf_name_problem(config.llm.lm_model_name)
    if config.stt_backend.name == "faster-whisper":
        model_problem = model_problem or whisper_name_problem(config.stt.stt_model_name)
    if model_problem:
        raise ConfigError(model_problem)
    stt_language = getattr(config.stt, "language", None)
    if getattr(config.stt, "languages", "") and stt_language not in ("auto", "", None) and module.mode != "realtime":
        # Realtime sessions may ask for detection themselves, and are narrowed to the list then.
        raise ConfigError(
            f"--languages narrows --language auto; with --language {stt_language} it would do nothing: "
            "add --language auto, or leave --languages out"
        )
    if vad.turn_detector not in ("evidence", "silence", "smart-turn"):
        raise ConfigError(f"--turn_detector must be 'evidence', 'silence' or 'smart-turn', not {vad.turn_detector!r}")
    if vad.eagerness not in ("auto", "low", "medium", "high"):
        raise ConfigError(f"--eagerness must be auto, low, medium or high, not {vad.eagerness!r}")
    if vad.sample_rate not in (8000, 16000):
        raise ConfigError(f"--sample_rate must be 16000 or 8000 (Silero VAD), not {vad.sample_rate}")
    if not 0.0 < vad.thresh < 1.0:
        raise ConfigError(f"--thresh must be between 0 and 1, not {vad.thresh}")
    if vad.min_silence_ms < 0 or vad.min_speech_ms < 0 or vad.speech_pad_ms < 0:
        raise ConfigError("--min_silence_ms, --min_speech_ms and --speech_pad_ms must be >= 0")
    if not (vad.max_speech_ms > vad.min_speech_ms or math.isinf(vad.max_speech_ms)):
        raise ConfigError("--max_speech_ms must be larger than --min_speech_ms")
    if config.local_audio.list_play_chunk_size <= 0:
        raise ConfigError("--list_play_chunk_size must be a positive number of frames")
    if config.local_audio.aec_engine not in ("auto", *ECHO_CANCELLERS):
        raise ConfigError(f"--aec_engine must be auto or one of {', '.join(ECHO_CANCELLERS)}")
    realtime = config.realtime
    for flag, host in listening_hosts(config):
        problem = resolution_problem(host)
        if problem:
            raise ConfigError(f"--{flag} {host}: {problem}")
    if module.mode == "realtime" and not is_loopback(realtime.realtime_host):
        if not realtime.api_key and not realtime.allow_unauthenticated:
            raise ConfigError(
                f"--realtime_host {realtime.realtime_host} is reachable from other machines: set S2S_API_KEY "
                "(or --api_key), or pass --allow_unauthenticated to let anyone talk to the assistant"
            )
    if module.metrics_port is not None:
        if module.mode == "file":
            raise ConfigError("--metrics_port is for the servers (socket, local and realtime modes), not --mode file")
        if not 0 <= module.metrics_port <= 65535:
            raise ConfigError(f"--metrics_port must be a port number (0-65535), not {module.metrics_port}")
    if not realtime.drain_timeout_s >= 0:
        raise ConfigError("--drain_timeout_s must be a number of seconds >= 0")
    if realtime.max_sessions < 1:
        raise ConfigError("--max_sessions must be at least 1")
    if bool(realtime.ssl_certfile) != bool(realtime.ssl_keyfile):
        raise ConfigError("--ssl_certfile and --ssl_keyfile go together")
    if module.mode == "realtime" and realtime.ssl_certfile:
        problem = tls_files_problem(realtime.ssl_certfile, realtime.ssl_keyfile)
        if problem:
            raise ConfigError(problem)
    if config.turn_taking.interrupt_min_speech_ms < 0 or config.socket_sender.playback_lead_ms < 0:
        raise ConfigError("--interrupt_min_speech_ms and --playback_lead_ms must be >= 0")
    if config.turn_taking.false_interruption_timeout_ms <= 0:
        raise ConfigError("--false_interruption_timeout_ms must be a positive number of ms")
    if not config.tools.tool_timeout_s > 0:
        raise ConfigError("--tool_timeout_s must be a positive number of seconds")
    if not config.socket_sender.send_timeout_s > 0:
        raise ConfigError("--send_timeout_s must be a positive number of seconds")
    if config.socket_receiver.chunk_size <= 0 or config.socket_receiver.chunk_size % 2:
        raise ConfigError("--chunk_size must be a positive even number of bytes (int16 samples)")
