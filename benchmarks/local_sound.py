"""Local mode on a private sound server: a PulseAudio of its own with a virtual
microphone and speaker, the pipeline started on it, and a tap on its speaker.

For the local-mode tests and the benchmarks that talk to local mode (barge-in,
interruptions).  Needs Debian's pulseaudio and pulseaudio-utils; PortAudio
reaches the server through ALSA's pulse plugin (libasound2-plugins).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmarks.harness import REPO


@contextlib.contextmanager
def private_pulseaudio(folder: Path) -> Iterator[dict]:
    """A user-level PulseAudio with null sinks in `folder`, stopped at the
    end; yields the environment its clients need."""
    from models.packaged import cache_root

    runtime = folder / "pulse-runtime"
    runtime.mkdir(mode=0o700)
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "HOME": str(folder),
        "PULSE_RUNTIME_PATH": str(runtime / "pulse"),
        # The models' cache stays the user's: under the private HOME every
        # pipeline started here joined and checksummed its own 1.1 GB copy of the LLM.
        "S2S_CACHE_DIR": str(cache_root()),
    }
    env.pop("PULSE_SERVER", None)
    subprocess.run(
        ["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "--system=false", "-n",
         "--load=module-native-protocol-unix",
         "--load=module-null-sink sink_name=s2s_speaker",
         "--load=module-null-sink sink_name=s2s_mic_feed",
         "--load=module-remap-source master=s2s_mic_feed.monitor source_name=s2s_mic",
         f"--log-target=file:{folder / 'pulseaudio.log'}"],
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


def log_tail(log: Path, characters: int = 4000) -> str:
    """The end of a pipeline's log for a failure message, without ALSA's
    one-line complaints, which can fill all of it."""
    lines = [line for line in log.read_text().splitlines() if not line.startswith("ALSA lib")]
    return "\n".join(lines)[-characters:]


def wait_for(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


class SpeakerTap:
    """Reads the virtual speaker's monitor live (parec), timestamping each
    piece on arrival, to see when the assistant is talking and when it stops."""

    def __init__(self, env: dict, rate: int = 16000) -> None:
        self.rate = rate
        self.pieces: list[tuple[float, np.ndarray]] = []
        self.process = subprocess.Popen(
            ["parec", "--device=s2s_speaker.monitor", f"--rate={rate}", "--channels=1", "--format=s16le",
             "--latency-msec=20"],
            env=env, stdout=subprocess.PIPE,
        )  # fmt: skip
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            data = self.process.stdout.read(640)  # 20 ms
            if not data:
                return
            self.pieces.append((time.perf_counter(), np.frombuffer(data, dtype="<i2")))

    def loud_times(self, since: float = 0.0, threshold: int = 500) -> list[float]:
        return [at for at, samples in list(self.pieces) if at >= since and np.abs(samples).max() > threshold]

    def talking_since(self, since: float) -> float:
        """Seconds of reply audio heard since `since`."""
        return len(self.loud_times(since)) * 0.02

    def describe(self) -> str:
        pieces = list(self.pieces)
        if not pieces:
            return f"nothing read from the speaker (parec exit status {self.process.poll()})"
        loudest = max(int(np.abs(samples).max()) for _, samples in pieces)
        return f"{len(pieces)} pieces, the last {time.perf_counter() - pieces[-1][0]:.1f} s ago, peak {loudest}"

    def close(self) -> np.ndarray:
        self.process.terminate()
        self.process.wait(timeout=10)
        return np.concatenate([samples for _, samples in self.pieces]) if self.pieces else np.zeros(0, np.int16)


def loop_speaker_into_mic(env: dict) -> None:
    """The speaker's sound reaches the microphone, as in a room (60 ms later).

    `adjust_time=0`: a room's path does not move, but the loopback's rate
    adjustment moved it by 75 ms in the middle of a reply under the suite's
    load, and the leak until the delay tracker followed interrupted the reply.
    (Paths that do move are the full-duplex tests' subject, with simulated
    rooms: tests/test_full_duplex.py.)"""
    subprocess.run(
        ["pactl", "load-module", "module-loopback", "source=s2s_speaker.monitor", "sink=s2s_mic_feed",
         "latency_msec=60", "adjust_time=0"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip


def start_local_pipeline(env: dict, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, Path, Path]:
    metrics, log = tmp_path / "metrics.jsonl", tmp_path / "pipeline.log"
    process = subprocess.Popen(
        [sys.executable, "s2s_pipeline.py", "--mode", "local", "--input_device", "pulse", "--output_device", "pulse",
         "--metrics_file", str(metrics), "--log_level", "debug", *extra],
        cwd=REPO, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert wait_for(lambda: "ready: speak" in log.read_text(), 120), log_tail(log)
    return process, metrics, log


def turns_of(metrics: Path) -> list[dict]:
    return [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []


def end_of_first_run(times: list[float], gap: float = 0.5) -> float:
    """The last of `times` before the first pause longer than `gap`."""
    for before, after in itertools.pairwise(times):
        if after - before > gap:
            return before
    return times[-1] if times else 0.0
