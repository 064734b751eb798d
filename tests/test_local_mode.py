"""Local mode through a real audio stack: a private PulseAudio server with a
virtual microphone (fed by `paplay` from a speech WAV) and a virtual speaker
(recorded with `parecord`); PortAudio reaches it through ALSA's pulse plugin.

Needs Debian's pulseaudio, pulseaudio-utils, libportaudio2 and
libasound2-plugins (.ci/run installs them).  Without them the test is skipped
on a developer machine but fails in CI, so CI can never pass by skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import QUESTIONS, REPO
from utils.audio import int16_to_float, load_audio

TOOLS = ("pulseaudio", "pactl", "paplay", "parecord")


def require_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        message = f"local-mode test needs {', '.join(missing)} (apt-get install pulseaudio pulseaudio-utils)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def sound_server(tmp_path):
    """A user-level PulseAudio with null sinks, stopped at the end."""
    require_tools()
    runtime = tmp_path / "pulse-runtime"
    runtime.mkdir(mode=0o700)
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "HOME": str(tmp_path),
        "PULSE_RUNTIME_PATH": str(runtime / "pulse"),
    }
    env.pop("PULSE_SERVER", None)
    subprocess.run(
        ["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "--system=false", "-n",
         "--load=module-native-protocol-unix",
         "--load=module-null-sink sink_name=s2s_speaker",
         "--load=module-null-sink sink_name=s2s_mic_feed",
         "--load=module-remap-source master=s2s_mic_feed.monitor source_name=s2s_mic",
         f"--log-target=file:{tmp_path / 'pulseaudio.log'}"],
        env=env, check=True, timeout=30,
    )  # fmt: skip
    try:
        for _ in range(50):
            if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run(["pactl", "set-default-source", "s2s_mic"], env=env, check=True)
        subprocess.run(["pactl", "set-default-sink", "s2s_speaker"], env=env, check=True)
        yield env
    finally:
        subprocess.run(["pulseaudio", "--kill"], env=env, timeout=30)


def wait_for(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def test_local_mode_answers_a_spoken_question(sound_server, tmp_path: Path, stt_handler):
    env = sound_server
    listing = subprocess.run(
        [sys.executable, "s2s_pipeline.py", "--mode", "local", "--list_devices"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listing.returncode == 0 and "pulse" in listing.stdout

    recording = tmp_path / "speaker.wav"
    metrics = tmp_path / "metrics.jsonl"
    log = tmp_path / "pipeline.log"
    recorder = subprocess.Popen(
        ["parecord", "--device=s2s_speaker.monitor", "--rate=16000", "--channels=1", "--format=s16le",
         "--file-format=wav", str(recording)],
        env=env,
    )  # fmt: skip
    with open(log, "w") as log_handle:
        pipeline = subprocess.Popen(
            [sys.executable, "s2s_pipeline.py", "--mode", "local", "--input_device", "pulse",
             "--output_device", "pulse", "--metrics_file", str(metrics)],
            cwd=REPO, env=env, stdout=log_handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            assert wait_for(lambda: "ready: speak" in log.read_text(), 120), log.read_text()[-3000:]
            subprocess.run(["paplay", "--device=s2s_mic_feed", str(QUESTIONS / "q01.wav")], env=env, check=True)
            assert wait_for(lambda: metrics.exists() and metrics.read_text().strip(), 90), log.read_text()[-3000:]
            time.sleep(0.5)
            pipeline.send_signal(signal.SIGINT)
            began = time.perf_counter()
            assert pipeline.wait(timeout=10) == 0
            assert time.perf_counter() - began < 2.0, "Ctrl-C must stop audio and threads within 2 s"
        finally:
            if pipeline.poll() is None:
                pipeline.kill()
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=10)

    text = log.read_text()
    assert "Traceback" not in text
    turn = json.loads(metrics.read_text().splitlines()[0])
    assert "capital" in turn["transcript"].lower()
    assert "paris" in turn["reply"].lower()
    heard = stt_handler.transcribe(int16_to_float(load_audio(recording)))[0].lower()
    assert "paris" in heard, heard


def test_missing_device_is_one_clear_error(sound_server):
    result = subprocess.run(
        [sys.executable, "s2s_pipeline.py", "--mode", "local", "--input_device", "no-such-microphone"],
        cwd=REPO, env=sound_server, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no input device matches 'no-such-microphone'" in result.stderr and "pulse" in result.stderr


def test_no_sound_server_means_no_devices_and_exit_1(tmp_path):
    """Without any audio server the ALSA pulse plugin finds nothing to open."""
    require_tools()
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "PULSE_SERVER": "unix:/nonexistent"}
    result = subprocess.run(
        [sys.executable, "s2s_pipeline.py", "--mode", "local", "--input_device", "pulse"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "s2s: error:" in result.stderr
