"""Socket mode over real TCP on loopback, with the real models behind it.

One server process (started as README shows, on free ports) serves every test
in this module in turn; each test also checks it is still up afterwards.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from audio.pcm import int16_to_float, load_audio
from benchmarks.server_process import ServerProcess
from connections.tcp import listen
from tests.conftest import HUMAN, QUESTIONS, REPO, heard_word

pytestmark = pytest.mark.timing


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = ServerProcess("socket", tmp_path_factory.mktemp("socket_server"))
    yield running
    assert running.alive(), "the server died during the tests:\n" + running.log.read_text()[-3000:]
    assert running.stop() == 0
    assert "Traceback" not in running.log.read_text()


def client(server: ServerProcess, input_file: Path, output_file: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "listen_and_play.py", "--host", "127.0.0.1",
         "--send_port", str(server.recv_port), "--recv_port", str(server.send_port),
         "--input_file", str(input_file), "--output_file", str(output_file), "--timeout_s", "90", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def transcribe(stt_handler, path: Path) -> str:
    return stt_handler.transcribe(int16_to_float(load_audio(path)))[0].lower()


def send_raw(server: ServerProcess, payload: bytes, pace_chunks: bool = False) -> None:
    with socket.create_connection(("127.0.0.1", server.recv_port)) as conn:
        if pace_chunks:
            for start in range(0, len(payload), 1024):
                conn.sendall(payload[start : start + 1024])
                time.sleep(0.032)
        else:
            conn.sendall(payload)
        time.sleep(0.3)


def test_headless_client_round_trip_as_readme_shows(server, tmp_path, stt_handler):
    before = len(server.turns())
    reply = tmp_path / "reply.wav"
    result = client(server, QUESTIONS / "q01.wav", reply)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "received" in result.stdout
    assert heard_word(transcribe(stt_handler, reply), "paris")
    turn = server.wait_for_turns(before + 1)[-1]
    assert "france" in turn["transcript"].lower()
    assert turn["speech_end_to_first_audio_ms"] > turn["end_of_turn_to_first_audio_ms"]  # real-time pace


def test_human_speech_gets_an_answer_about_what_was_said(server, tmp_path, stt_handler):
    """A real recorded voice (LibriVox reader); the server hears it and the
    audio that comes back is the reply it logged."""
    clip = HUMAN / "pocketsphinx" / "goforward.wav"
    before = len(server.turns())
    reply = tmp_path / "reply.wav"
    result = client(server, clip, reply)
    assert result.returncode == 0, result.stderr[-2000:]
    turn = server.wait_for_turns(before + 1)[-1]
    assert "forward" in turn["transcript"].lower() and "meters" in turn["transcript"].lower()
    heard_reply = transcribe(stt_handler, reply)
    reply_words = set(re.findall(r"[a-z']+", turn["reply"].lower()))
    heard_words = set(re.findall(r"[a-z']+", heard_reply))
    assert len(reply_words & heard_words) >= 0.6 * len(reply_words), (turn["reply"], heard_reply)


def test_a_pause_inside_a_turn_gets_no_reply_of_its_own(server, tmp_path, stt_handler):
    """Two questions with a 200 ms pause between them, at real-time pace: the
    server speculates on the pause (50 ms) and starts answering the first
    question, but the pause is shorter than the end of turn (300 ms), so that
    reply is cancelled: one turn, holding both questions, and only its reply
    comes back; the cancelled one takes no turn number."""
    import soundfile

    first = load_audio(QUESTIONS / "q01.wav")[:-5000]  # the file ends in 350 ms of silence
    second = load_audio(QUESTIONS / "q03.wav")
    speech = tmp_path / "two_questions.wav"
    soundfile.write(speech, np.concatenate([first, np.zeros(3200, np.int16), second]), 16000, subtype="PCM_16")
    before = len(server.turns())
    reply = tmp_path / "reply.wav"
    # The client stays until no reply audio came for 10 s: a busy machine may
    # pause longer than the default 2 s between two sentences of the reply.
    result = client(server, speech, reply, "--reply_idle_s", "10")
    assert result.returncode == 0, result.stderr[-2000:]
    time.sleep(1.0)
    turns = server.wait_for_turns(before + 1)[before:]
    assert len(turns) == 1, [t["transcript"] for t in turns]
    assert turns[0]["speculations_cancelled"] >= 1  # a speculative turn was opened, and cancelled
    assert turns[0]["turn"] == 1  # this client's first turn: the cancelled speculation took no number
    transcript = turns[0]["transcript"].lower()
    assert "france" in transcript and "leap" in transcript
    heard = set(re.findall(r"[a-z']+", transcribe(stt_handler, reply)))
    logged = set(re.findall(r"[a-z']+", turns[0]["reply"].lower()))
    assert len(heard & logged) >= 0.6 * len(heard), (turns[0]["reply"], heard)  # nothing else was played


def test_disconnect_mid_utterance_then_next_client_gets_a_full_answer(server, tmp_path, stt_handler):
    speech = load_audio(QUESTIONS / "q02.wav")
    half = speech[: speech.size // 2].astype("<i2").tobytes() + b"\x01"  # and half a sample
    send_raw(server, half, pace_chunks=True)
    reply = tmp_path / "reply.wav"
    result = client(server, QUESTIONS / "q01.wav", reply)
    assert result.returncode == 0, result.stderr[-2000:]
    assert heard_word(transcribe(stt_handler, reply), "paris")
    partial = len(half) % 1024
    assert partial and f"discarding {partial} bytes of a partial chunk" in server.log.read_text()


def test_garbage_truncated_and_silent_clients_do_not_stop_the_server(server, tmp_path, stt_handler):
    rng = np.random.default_rng(7)
    send_raw(server, rng.integers(0, 256, 3001, dtype=np.uint8).tobytes())  # odd length noise
    send_raw(server, b"\x00" * 1023)  # one byte short of a chunk
    silent = socket.create_connection(("127.0.0.1", server.recv_port))  # connects, says nothing
    try:
        reply = tmp_path / "reply.wav"
        result = client(server, QUESTIONS / "q01.wav", reply)  # takes over from the silent one
        assert result.returncode == 0, result.stderr[-2000:]
        assert heard_word(transcribe(stt_handler, reply), "paris")
    finally:
        silent.close()
    assert server.alive()


def test_a_client_faster_than_real_time_is_answered(server, tmp_path, stt_handler):
    before = len(server.turns())
    speech = load_audio(QUESTIONS / "q05.wav")
    payload = np.concatenate([np.zeros(8000, np.int16), speech, np.zeros(16000, np.int16)])
    received = bytearray()
    with (
        socket.create_connection(("127.0.0.1", server.send_port)) as replies,
        socket.create_connection(("127.0.0.1", server.recv_port)) as audio,
    ):
        replies.settimeout(0.5)
        audio.sendall(payload.astype("<i2").tobytes())  # all at once; stays connected for the answer
        deadline = time.time() + 60
        while time.time() < deadline and len(server.turns()) <= before:
            try:
                received.extend(replies.recv(65536))
            except TimeoutError:
                pass
        time.sleep(0.5)
        try:
            received.extend(replies.recv(1 << 20))
        except TimeoutError:
            pass
    turn = server.turns()[-1]
    assert "boiling" in turn["transcript"].lower()
    assert len(received) > 16000 * 2  # over half a second of reply audio came back


def test_client_without_a_server_gives_a_clear_error():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "listen_and_play.py", "--send_port", str(port), "--recv_port", str(port),
         "--input_file", str(QUESTIONS / "q01.wav"), "--connect_attempts", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot reach the s2s server's audio port" in result.stderr
    assert "retrying" in result.stderr


@pytest.mark.parametrize("which", ["recv", "send"])
def test_a_second_server_on_the_same_port_fails_at_once_naming_it(server, which):
    """Ports are bound before the models load: the second server says which
    port is taken, and why that may be, without loading anything."""
    taken = server.recv_port if which == "recv" else server.send_port
    result = subprocess.run(
        [sys.executable, "s2s_pipeline.py", f"--{which}_port", str(taken)],
        cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("s2s: error:")]
    assert len(errors) == 1 and f"127.0.0.1:{taken}" in errors[0], result.stderr[-2000:]
    assert "another s2s server running?" in errors[0] and f"--{which}_port" in errors[0]
    assert "Traceback" not in result.stderr and "models loaded" not in result.stderr
    assert server.alive()


def test_binding_beyond_loopback_warns(caplog):
    caplog.set_level(logging.WARNING)
    server = listen("0.0.0.0", 0, "test receiver")
    server.close()
    assert any("open to other machines" in record.message for record in caplog.records)
    caplog.clear()
    listen("127.0.0.1", 0, "test receiver").close()
    assert not caplog.records


@pytest.mark.parametrize(
    "key,says", [(None, "anyone who can reach it can talk"), ("k" * 20, "only clients with its API key")]
)
def test_the_open_port_warning_says_who_gets_in(caplog, key, says):
    """A keyed realtime server on 0.0.0.0 warned that anyone could talk to the assistant."""
    import queue
    import threading

    from connections.realtime.connection import RealtimeOptions
    from connections.realtime.server import RealtimeServer
    from conversation.session import TurnDetection

    caplog.set_level(logging.WARNING)
    options = RealtimeOptions(model="s2s", pipeline_rate=16000, defaults=TurnDetection(0.3, 300, 500))
    server = RealtimeServer(threading.Event(), queue.Queue(), options, host="0.0.0.0", port=0, api_key=key)
    server.socket.close()
    (warning,) = [record.message for record in caplog.records if "open to other machines" in record.message]
    assert says in warning


def test_server_stops_on_ctrl_c_within_two_seconds(tmp_path):
    """A second server, only to time its shutdown."""
    other = ServerProcess("socket", tmp_path)
    began = time.perf_counter()
    assert other.stop() == 0
    assert time.perf_counter() - began < 2.0
    assert "Traceback" not in other.log.read_text()


def test_a_wildcard_host_is_logged_as_an_address_a_browser_opens():
    """`--realtime_host 0.0.0.0` logged its talk page on https://0.0.0.0:8765/."""
    from utils.net import address_to_open

    assert address_to_open("0.0.0.0") == address_to_open("::") == socket.gethostname()
    assert address_to_open("127.0.0.1") == "127.0.0.1" and address_to_open("::1") == "[::1]"
