"""The socket client's own logic, with a stand-in for the sound card.

Its round trips with the real server are in test_socket_mode.py; here the
sound device is replaced by a recorder of how streams are opened, since this
machine has no sound card.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import listen_and_play
from tests.conftest import REPO


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
