"""STT backends that cannot run here: whisper-mlx (Apple silicon) and paraformer
(FunASR fetches its weights from ModelScope or the hub).

What can be checked offline on Linux is checked: flags and registry wiring, the
clear message when the package is missing, and the pure helpers.  The real
transcription tests run only where the platform and the weights exist.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import sys
from pathlib import Path

import pytest

from audio.pcm import int16_to_float, load_audio
from config.parse import ConfigError, parse_config
from config.registry import STT_BACKENDS
from conversation.turn import Turn
from STT.lightning_whisper_mlx_handler import LightningWhisperSTTHandler
from STT.paraformer_handler import ParaformerSTTHandler, join_cjk
from tests.conftest import QUESTIONS, make_handler
from utils.messages import SpeechSegment, Transcript

ON_APPLE_SILICON = platform.system() == "Darwin" and platform.machine() == "arm64"


# --- whisper-mlx ---------------------------------------------------------------------


def test_whisper_mlx_flags_and_registry():
    config = parse_config(
        ["--stt", "whisper-mlx", "--stt_model_name", "distil-whisper/distil-large-v3", "--stt_quant", "4bit",
         "--language", "auto"]
    )  # fmt: skip
    assert config.stt_backend.handler_class() is LightningWhisperSTTHandler
    kwargs = config.stage_kwargs("stt")
    assert kwargs == {
        "model_name": "distil-whisper/distil-large-v3",
        "batch_size": 6,
        "quant": "4bit",
        "language": "auto",
        "gen_kwargs": {},
    }
    assert STT_BACKENDS["whisper-mlx"].extra == "pip install lightning-whisper-mlx"


def test_mac_preset_resolves_whisper_mlx():
    """`--local_mac_optimal_settings` picks whisper-mlx, mlx-lm and melo; the STT part
    must resolve, and the whole preset parses once the LLM and TTS backends exist."""
    from config.registry import LLM_BACKENDS, TTS_BACKENDS

    if "mlx-lm" in LLM_BACKENDS and "melo" in TTS_BACKENDS:
        config = parse_config(["--local_mac_optimal_settings"])
        assert config.stt_backend.name == "whisper-mlx" and config.module.mode == "local"
        assert config.stage_kwargs("stt")["model_name"] == "distil-large-v3"
    else:  # stages are looked up in order: an error past the STT means whisper-mlx resolved
        with pytest.raises(ConfigError, match=r"unknown --(llm|tts) '(mlx-lm|melo)'"):
            parse_config(["--local_mac_optimal_settings"])


def test_whisper_mlx_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightning_whisper_mlx", None)  # import fails as if not installed
    with pytest.raises(ImportError, match="pip install lightning-whisper-mlx"):
        make_handler(LightningWhisperSTTHandler)


@pytest.mark.skipif(
    not (ON_APPLE_SILICON and importlib.util.find_spec("lightning_whisper_mlx")),
    reason="MLX runs on Apple silicon only (with pip install lightning-whisper-mlx and hub access for the weights)",
)
def test_whisper_mlx_transcribes_on_apple_silicon():  # pragma: no cover - macOS only
    handler = make_handler(LightningWhisperSTTHandler, model_name="base", language="auto")
    turn = Turn()
    audio = int16_to_float(load_audio(QUESTIONS / "q01.wav"))
    (out,) = list(handler.process(SpeechSegment(audio=audio, sample_rate=16000, turn=turn)))
    assert isinstance(out, Transcript) and "france" in out.text.lower()
    assert out.language == "en-auto" and turn.language == "en"


# --- paraformer ----------------------------------------------------------------------


def test_paraformer_flags_and_registry():
    config = parse_config(["--stt", "paraformer", "--stt_hub", "hf", "--stt_device", "cuda"])
    assert config.stt_backend.handler_class() is ParaformerSTTHandler
    kwargs = config.stage_kwargs("stt")
    assert kwargs == {"model_name": "paraformer-zh", "device": "cuda", "hub": "hf", "language": "zh", "gen_kwargs": {}}
    assert parse_config(["--stt", "paraformer", "--device", "cpu"]).stt.stt_device == "cpu"


def test_paraformer_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "funasr", None)
    with pytest.raises(ImportError, match="pip install funasr"):
        make_handler(ParaformerSTTHandler)


def test_paraformer_joins_chinese_but_keeps_english_spaces():
    assert join_cjk("北 京 是 中 国 的 首 都") == "北京是中国的首都"
    assert join_cjk(" 我 用 open ai 的 模 型 ") == "我用 open ai 的模型"
    assert join_cjk("hello world") == "hello world"


def local_paraformer() -> str | None:
    """A Paraformer model this machine already has: `S2S_PARAFORMER_MODEL` (a
    folder or a name FunASR resolves), else one in ModelScope's cache."""
    if os.environ.get("S2S_PARAFORMER_MODEL"):
        return os.environ["S2S_PARAFORMER_MODEL"]
    cache = Path(os.environ.get("MODELSCOPE_CACHE", Path.home() / ".cache" / "modelscope" / "hub"))
    if not cache.is_dir():
        return None
    found = sorted(
        path for pattern in ("*paraformer*", "*/*paraformer*", "*/*/*paraformer*") for path in cache.glob(pattern)
    )
    return str(found[0]) if found else None


@pytest.mark.skipif(
    importlib.util.find_spec("funasr") is None or local_paraformer() is None,
    reason="needs pip install funasr and a Paraformer model on this machine (FunASR downloads paraformer-zh from "
    "ModelScope or the hub; set S2S_PARAFORMER_MODEL to a local copy)",
)
def test_paraformer_transcribes_with_a_local_model():  # pragma: no cover - needs the weights
    """The shared audio has no Mandarin, so the check is what any speech
    gives a Mandarin model: Chinese characters, joined without spaces."""
    handler = make_handler(ParaformerSTTHandler, model_name=local_paraformer(), device="cpu")
    turn = Turn()
    audio = int16_to_float(load_audio(QUESTIONS / "q01.wav"))
    (out,) = list(handler.process(SpeechSegment(audio=audio, sample_rate=16000, turn=turn)))
    assert isinstance(out, Transcript) and out.language == "zh" and turn.transcript == out.text
    assert re.search(r"[\u4e00-\u9fff]", out.text), out.text
    assert not re.search(r"[\u4e00-\u9fff] +[\u4e00-\u9fff]", out.text), out.text
