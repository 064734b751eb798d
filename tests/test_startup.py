"""Start-up as a user meets it: what the server says before it serves, and how it stops.

Every test starts `s2s_pipeline.py` as README does, as a process of its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import QUESTIONS, REPO

pytestmark = pytest.mark.timing

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "s2s_pipeline.py", *argv], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("s2s:")]


def test_a_host_name_that_does_not_resolve_is_said_so():
    """A configuration error (exit 2), found before any model loads."""
    result = run("--mode", "realtime", "--realtime_host", "no-such-host.invalid", "--allow_unauthenticated")
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = error_lines(result.stderr)
    assert "no-such-host.invalid" in line and "does not resolve" in line, line
    assert "another s2s server" not in line and "Traceback" not in result.stderr
    assert "models loaded" not in result.stderr


def test_a_realtime_port_in_use_names_the_flag_to_change():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run("--mode", "realtime", "--realtime_port", str(port))
    assert result.returncode == 1, result.stderr[-2000:]
    (line,) = error_lines(result.stderr)
    assert f"127.0.0.1:{port}" in line and "already in use" in line and "--realtime_port" in line, line
    assert "models loaded" not in result.stderr


def ignoring_sigint() -> None:
    """What a shell does to a background job (`python s2s_pipeline.py &`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    "argv",
    [
        ["--mode", "socket", "--recv_port", "0", "--send_port", "0"],
        ["--mode", "realtime", "--realtime_port", "0"],
        ["--input_file", str(QUESTIONS / "q01.wav"), "--output_file", "OUT"],
    ],
    ids=["socket", "realtime", "file"],
)
def test_ctrl_c_during_model_loading_stops_a_background_server(tmp_path: Path, argv: list[str]):
    """`kill -INT` while the models load (after the STT is ready, before the
    LLM is): exit status 130 at once, never 'ready'."""
    argv = [str(tmp_path / "answer.wav") if arg == "OUT" else arg for arg in argv]
    log = tmp_path / "server.log"
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [sys.executable, "s2s_pipeline.py", *argv], cwd=REPO, env=ENV, stdout=handle, stderr=subprocess.STDOUT,
            preexec_fn=ignoring_sigint,
        )  # fmt: skip
        try:
            deadline = time.time() + 120
            while "STT 'faster-whisper' ready" not in log.read_text():
                assert process.poll() is None and time.time() < deadline, log.read_text()[-2000:]
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            status = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    text = log.read_text()
    assert status == 130, text[-2000:]
    assert "s2s: interrupted" in text and "ready:" not in text and "Traceback" not in text


def test_the_default_stack_loads_without_torch_or_scipy_stats():
    """A start of the default stack imported torch twice for nothing (silero-vad's
    package to find its ONNX file, transformers' feature extractor for Smart
    Turn) and scipy.stats through nltk: 2 CPU s and 240 MB of every start."""
    code = (
        "import sys\n"
        "import pipeline.builder, LLM.sentences\n"
        "from config.checks import whisper_language_problem\n"
        "from VAD.silero import SileroModel\n"
        "from VAD.smart_turn import SmartTurnModel\n"
        "from STT.faster_whisper_handler import FasterWhisperSTTHandler\n"
        "from LLM.llama_cpp_language_model import LlamaCppLanguageModelHandler\n"
        "from TTS.piper_handler import PiperTTSHandler\n"
        "SileroModel().stream().probability(__import__('numpy').zeros(512, 'float32'))\n"
        "from models.packaged import ModelNotInstalledError\n"
        "try:\n"
        "    SmartTurnModel().finished_probability(__import__('numpy').zeros(16000, 'float32'))\n"
        "except ModelNotInstalledError:\n"
        "    pass  # optional (pip install --no-deps pipecat-ai==1.14.0; CI installs it)\n"
        "assert whisper_language_problem('nl') is None and whisper_language_problem('xx')\n"
        "print(sorted(m for m in ('torch', 'scipy.stats', 'transformers.models.whisper') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]", result.stdout
