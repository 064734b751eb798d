"""A stage thread that dies stops the whole pipeline, in every mode.

The real pipeline runs in a child process, as a user starts it, with one fault
injected outside any turn (where BaseHandler's per-turn guard cannot catch
it): the VAD's reset (socket mode), the file source's thread (file mode),
the sound device during a stream (local mode).  The process must end within
2 s of the fault with exit status 1 and one `s2s: error:` line naming the
stage, instead of staying half alive.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest

from benchmarks.server_process import SOCKET_READY as READY
from tests.conftest import QUESTIONS, REPO
from tests.test_local_mode import sound_server  # noqa: F401 - the fixture

pytestmark = pytest.mark.timing

FAST_MODELS = ["--stt_model_name", "tiny.en", "--lm_model_name", "smollm2-135m"]
MARK = "FAULT INJECTED"

# Prepended to the entry point: `fault()` prints the mark, then raises.
PRELUDE = f"""
import sys, s2s_pipeline

def fault(*args, **kwargs):
    print("{MARK}", file=sys.stderr, flush=True)
    raise RuntimeError("injected fault")
"""


class Child:
    """The pipeline in a child process; stderr lines timestamped as they come."""

    def __init__(self, patch: str, args: list[str], env: dict | None = None) -> None:
        code = PRELUDE + patch + "\ns2s_pipeline.exit_now(s2s_pipeline.main(sys.argv[1:]))\n"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append((time.perf_counter(), line.rstrip("\n")))

    def wait_for(self, text: str, timeout: float) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for when, line in list(self.lines):
                if text in line:
                    return when
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        self.process.kill()
        raise AssertionError(f"{text!r} never came:\n" + self.stderr[-3000:])

    def finish(self, timeout: float = 10) -> tuple[int, float]:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError("the pipeline stayed half alive:\n" + self.stderr[-3000:]) from None
        ended = time.perf_counter()
        self._reader.join(5)
        return code, ended

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in self.lines)


def assert_one_error_naming(child: Child, stage: str, fault_at: float, ended: float, code: int) -> None:
    errors = [line for _, line in child.lines if line.startswith("s2s: error:")]
    assert code == 1, child.stderr[-3000:]
    assert len(errors) == 1, errors
    assert stage in errors[0] and "injected fault" in errors[0], errors
    assert "Traceback" not in child.stderr
    assert ended - fault_at < 2.0, f"stopped {ended - fault_at:.2f} s after the fault"


def test_file_mode_source_thread_dying_ends_the_run(tmp_path):
    child = Child(
        "from connections.file_io import FileAudioSource\nFileAudioSource.run = fault\n",
        ["--mode", "file", "--input_file", str(QUESTIONS / "q01.wav"), "--output_file", str(tmp_path / "a.wav"),
         *FAST_MODELS],
    )  # fmt: skip
    fault_at = child.wait_for(MARK, 120)
    code, ended = child.finish()
    assert_one_error_naming(child, "FileAudioSource", fault_at, ended, code)


def test_socket_mode_vad_dying_on_reset_stops_the_server():
    child = Child(
        "from VAD.vad_handler import VADHandler\nVADHandler.on_reset = fault\n",
        ["--mode", "socket", "--recv_port", "0", "--send_port", "0", *FAST_MODELS],
    )
    child.wait_for("ready: send audio", 120)
    port = int(READY.search(child.stderr).group(1))
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(bytes(2048))
    fault_at = child.wait_for(MARK, 10)  # the client left: the conversation is reset
    code, ended = child.finish()
    assert_one_error_naming(child, "VADHandler", fault_at, ended, code)


@pytest.mark.usefixtures("sound_server")
def test_local_mode_device_failing_mid_stream_stops_the_pipeline(sound_server):  # noqa: F811
    patch = """
from connections.local_audio_streamer import LocalAudioStreamer
open_stream = LocalAudioStreamer.open_stream
def failing_stream(self):
    stream = open_stream(self)
    read, reads = stream.read, []
    def read_then_fail(frames):
        reads.append(frames)
        if len(reads) == 50:  # 1.6 s into the stream: the device goes away
            print("FAULT INJECTED", file=sys.stderr, flush=True)
            raise self.sd.PortAudioError("injected fault")
        return read(frames)
    stream.read = read_then_fail
    return stream
LocalAudioStreamer.open_stream = failing_stream
"""
    child = Child(
        patch, ["--mode", "local", "--input_device", "pulse", "--output_device", "pulse", *FAST_MODELS], sound_server
    )
    fault_at = child.wait_for(MARK, 120)
    code, ended = child.finish()
    assert_one_error_naming(child, "LocalAudioStreamer", fault_at, ended, code)


def test_ctrl_c_while_the_tts_is_inside_a_long_call_still_stops_within_2_s():
    """A stage cannot look at the stop event while inside one model call (a
    long sentence on a busy machine); the server must not wait for it."""
    import signal

    import numpy as np

    from audio.pcm import load_audio

    patch = """
import time
from TTS.piper_handler import PiperTTSHandler
synthesize = PiperTTSHandler.synthesize
def slow(self, text):
    if text != "Hello.":  # not the warm-up
        print("FAULT INJECTED", file=sys.stderr, flush=True)
        time.sleep(10)  # one very long sentence
    yield from synthesize(self, text)
PiperTTSHandler.synthesize = slow
"""
    child = Child(patch, ["--mode", "socket", "--recv_port", "0", "--send_port", "0", *FAST_MODELS])
    child.wait_for("ready: send audio", 120)
    port = int(READY.search(child.stderr).group(1))
    speech = np.concatenate([load_audio(QUESTIONS / "q01.wav"), np.zeros(16000, np.int16)])
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(speech.astype("<i2").tobytes())
        child.wait_for(MARK, 60)  # the TTS is now stuck in its call
        signalled = time.perf_counter()
        child.process.send_signal(signal.SIGINT)
        code, ended = child.finish()
    assert code == 0, child.stderr[-3000:]
    assert ended - signalled < 2.0, f"stopped {ended - signalled:.2f} s after Ctrl-C"
    assert "not waited for: PiperTTSHandler" in child.stderr
    assert "Traceback" not in child.stderr
