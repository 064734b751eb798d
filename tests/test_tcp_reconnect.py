"""Reconnecting is served in milliseconds: real sockets on loopback, the real
receiver and sender threads, no models.

With a listen backlog of 1, a client that reconnects while its previous
connection is still queued has its SYN dropped and waits for TCP's
retransmit, a second or more; the check is that none of many quick
reconnects pays that, and the last client is served afterwards.
"""

from __future__ import annotations

import queue
import socket
import threading
import time

import numpy as np
import pytest

from connections.socket_receiver import SocketReceiver
from connections.socket_sender import SocketSender
from conversation.turn import Turn
from utils.messages import AudioChunk, TTSAudio

pytestmark = pytest.mark.timing

CYCLES = 300
RETRANSMIT_S = 0.5  # a dropped SYN costs at least 1 s; a served connect well under 1 ms


def reconnect_times(port: int) -> list[float]:
    times = []
    for _ in range(CYCLES):
        began = time.perf_counter()
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
        times.append(time.perf_counter() - began)
    return times


def test_quick_reconnects_to_the_audio_port_are_never_held_back():
    stop, audio = threading.Event(), queue.Queue()
    receiver = SocketReceiver(stop, audio, threading.Event(), port=0)
    receiver.should_listen.set()
    thread = threading.Thread(target=receiver.run, daemon=True)
    thread.start()
    try:
        slow = [t for t in reconnect_times(receiver.port) if t > RETRANSMIT_S]
        assert slow == [], f"{len(slow)} of {CYCLES} reconnects waited for a SYN retransmit"
        with socket.create_connection(("127.0.0.1", receiver.port)) as client:  # the next client is served
            client.sendall(np.ones(512, "<i2").tobytes())
            deadline = time.time() + 5
            while time.time() < deadline:
                message = audio.get(timeout=5)
                if isinstance(message, AudioChunk):
                    break
            assert isinstance(message, AudioChunk) and message.samples.size == 512
    finally:
        stop.set()
        thread.join(2)


def test_quick_reconnects_to_the_reply_port_are_never_held_back():
    stop = threading.Event()
    sender = SocketSender(
        stop, queue.Queue(), queue.Queue(), setup_kwargs={"should_listen": threading.Event(), "port": 0}
    )
    try:
        slow = [t for t in reconnect_times(sender.port) if t > RETRANSMIT_S]
        assert slow == [], f"{len(slow)} of {CYCLES} reconnects waited for a SYN retransmit"
        with socket.create_connection(("127.0.0.1", sender.port)) as client:
            client.settimeout(0.2)
            deadline = time.time() + 5
            received = b""
            while not received and time.time() < deadline:  # until the acceptor has taken this client
                sender.output(TTSAudio(np.full(160, 7, np.int16), 16000, "hi", Turn()))
                try:
                    received = client.recv(320)
                except TimeoutError:
                    pass
            assert received and np.frombuffer(received, "<i2")[0] == 7
    finally:
        stop.set()
        sender.cleanup()
