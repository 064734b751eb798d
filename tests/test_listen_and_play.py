"""The socket client's own logic, with a stand-in for the sound card.

Its round trips with the real server are in test_socket_mode.py; here the
sound device is replaced by a recorder of how streams are opened, since this
machine has no sound card.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

import listen_and_play
from tests.conftest import REPO

pytestmark = pytest.mark.timing


class FakeSoundDevice:
    """Records the streams a client opens; their callbacks are never called."""

    class PortAudioError(Exception):
        pass

    def __init__(self) -> None:
        self.opened: list[tuple[str, dict]] = []
        owner = self

        class Stream:
            kind = ""

            def __init__(self, **kwargs) -> None:
                owner.opened.append((self.kind, kwargs))

            def __enter__(self):
                return self

            def __exit__(self, *exc) -> None:
                return None

        self.RawInputStream = type("RawInputStream", (Stream,), {"kind": "input"})
        self.RawOutputStream = type("RawOutputStream", (Stream,), {"kind": "output"})


def run_session(argv: list[str]) -> FakeSoundDevice:
    """One live session against socket pairs; the server side closes at once."""
    sd = FakeSoundDevice()
    options = listen_and_play.parse_args(argv)
    send, server_send = socket.socketpair()
    recv, server_recv = socket.socketpair()
    server_recv.close()  # the reply connection drops: the session ends, asking to reconnect
    try:
        assert listen_and_play._live_session(sd, options, send, recv) is None
    finally:
        for sock in (send, server_send, recv):
            sock.close()
    return sd


def test_play_chunk_size_counts_frames_as_the_server_does():
    sd = run_session(["--list_play_chunk_size", "512"])
    blocks = {kind: kwargs["blocksize"] for kind, kwargs in sd.opened}
    assert blocks["output"] == 512  # frames, as `s2s_pipeline.py --mode local --list_play_chunk_size 512`
    assert blocks["input"] == 512  # --chunk_size 1024 bytes of int16


def test_default_play_block_is_32_ms():
    sd = run_session([])
    (output,) = [kwargs for kind, kwargs in sd.opened if kind == "output"]
    assert output["blocksize"] / output["samplerate"] == 0.032


def test_help_says_frames():
    result = subprocess.run(
        [sys.executable, "listen_and_play.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    text = " ".join(result.stdout.split())
    assert "--list_play_chunk_size" in text and "Frames (samples, not bytes) per playback block" in text


# --- a user without a sound card, and Ctrl-C --------------------------------------------


class NoSoundCard(FakeSoundDevice):
    def query_devices(self, device=None, kind=None):
        raise self.PortAudioError("Error querying device -1")


def test_live_mode_without_a_sound_card_points_at_input_file(capsys):
    options = listen_and_play.parse_args(["--send_port", "1", "--recv_port", "1", "--connect_attempts", "1"])
    assert listen_and_play.run_live(options, NoSoundCard()) == 1
    err = capsys.readouterr().err
    assert "no sound card found (Error querying device -1)" in err and "--input_file" in err
    assert "cannot reach" not in err  # said before trying the server: it cannot fix this


def test_live_mode_on_this_machine_without_a_sound_card(tmp_path):
    """The real sounddevice, with no sound server to reach (as in CI)."""
    import os

    import pytest
    import sounddevice

    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "PULSE_SERVER": "unix:/nonexistent"}
    probe = subprocess.run(
        [sys.executable, "-c", "import sounddevice as sd; sd.query_devices(kind='input')"],
        env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    if probe.returncode == 0:
        pytest.skip(f"this machine has a sound card ({sounddevice.__name__} finds an input device)")
    result = subprocess.run(
        [sys.executable, "listen_and_play.py", "--connect_attempts", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no sound card found" in result.stderr and "--input_file" in result.stderr


def test_ctrl_c_in_headless_mode_keeps_the_reply_recorded_so_far(tmp_path):
    """A stand-in server (two real listening sockets) sends one second of
    reply, then the user presses Ctrl-C before the reply is over."""
    import signal
    import time

    import numpy as np
    import soundfile

    from tests.conftest import QUESTIONS

    audio_port, reply_port = socket.socket(), socket.socket()
    for listener in (audio_port, reply_port):
        listener.bind(("127.0.0.1", 0))
        listener.listen()
    output = tmp_path / "reply.wav"
    connections = []
    client = subprocess.Popen(
        [sys.executable, "listen_and_play.py", "--send_port", str(audio_port.getsockname()[1]),
         "--recv_port", str(reply_port.getsockname()[1]), "--input_file", str(QUESTIONS / "q01.wav"),
         "--output_file", str(output)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # As a shell starts a background job: SIGINT ignored until the client says otherwise.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    try:
        audio_port.settimeout(30)
        reply_port.settimeout(30)
        connections += [audio_port.accept()[0], reply_port.accept()[0]]
        reply_conn = connections[1]
        reply = np.full(16000, 1000, np.int16)
        reply_conn.sendall(reply.astype("<i2").tobytes())
        time.sleep(1.0)  # received, and still "playing": the client is mid-reply
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=10)
    finally:
        if client.poll() is None:
            client.kill()
        for sock in (audio_port, reply_port, *connections):
            sock.close()
    assert client.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted; received 1.0 s of reply audio, written to" in err
    kept, rate = soundfile.read(output, dtype="int16")
    assert rate == 16000 and kept.size == 16000 and set(kept) == {1000}


def test_an_output_file_that_cannot_hold_the_reply_is_one_line_before_connecting(capsys):
    """An .mp3 name failed with a traceback after the whole conversation,
    the reply lost; a wrong flag printed the whole usage."""
    from listen_and_play import parse_args

    for argv, what in (
        (["--input_file", "q.wav", "--output_file", "reply.mp3"], "cannot write 16-bit audio to .mp3 files"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ):
        with pytest.raises(SystemExit) as exit_:
            parse_args(argv)
        assert exit_.value.code == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("listen_and_play: error:") and what in line
