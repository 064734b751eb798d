"""A reply client that stops reading cannot freeze the server.

Real sockets on loopback and the real SocketSender thread, no models.  The
stalled client shrinks its receive buffer and never reads; the sender's own
buffer is capped, so the stall shows after a few hundred kilobytes of reply
instead of the megabytes Linux would otherwise buffer.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time

import numpy as np
import pytest

from connections.socket_sender import SocketSender
from conversation.turn import Turn
from utils.messages import EndOfResponse, EndOfStream, TTSAudio

pytestmark = pytest.mark.timing

# Five minutes of reply, 9.6 MB: more than Linux's largest send buffer
# (tcp_wmem, 4 MB by default), so a plain blocking sendall blocks for good.
REPLY = np.full(16000 * 300, 3, np.int16)


def start_sender(send_timeout_s: float) -> tuple[SocketSender, threading.Event, threading.Thread]:
    stop, should_listen = threading.Event(), threading.Event()
    sender = SocketSender(
        stop, queue.Queue(), queue.Queue(),
        setup_kwargs={"should_listen": should_listen, "port": 0, "send_timeout_s": send_timeout_s},
    )  # fmt: skip
    thread = threading.Thread(target=sender.run, daemon=True)
    thread.start()
    return sender, should_listen, thread


def stalled_client(port: int) -> socket.socket:
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    client.connect(("127.0.0.1", port))
    return client


def wait_until_accepted(sender: SocketSender, client: socket.socket) -> None:
    """Until the sender's current reply connection is this client's."""

    def current_peer():
        conn = sender._conn
        try:
            return conn.getpeername() if conn is not None else None
        except OSError:
            return None

    deadline = time.time() + 5
    while current_peer() != client.getsockname() and time.time() < deadline:
        time.sleep(0.01)
    assert current_peer() == client.getsockname()


def test_a_client_that_never_reads_is_dropped_and_the_next_one_is_served(caplog):
    caplog.set_level(logging.INFO)
    sender, should_listen, thread = start_sender(send_timeout_s=0.5)
    stalled = stalled_client(sender.port)
    try:
        wait_until_accepted(sender, stalled)
        turn = Turn()
        began = time.perf_counter()
        sender.queue_in.put(TTSAudio(REPLY, 16000, "a long answer", turn))
        sender.queue_in.put(EndOfResponse(turn))
        assert should_listen.wait(10), "the turn never ended: the server would never listen again"
        assert time.perf_counter() - began < 5
        assert any("read nothing for 0.5 s" in r.message for r in caplog.records), caplog.text

        with socket.create_connection(("127.0.0.1", sender.port)) as reader:
            wait_until_accepted(sender, reader)
            turn = Turn()
            sender.queue_in.put(TTSAudio(np.full(1600, 9, np.int16), 16000, "next", turn))
            sender.queue_in.put(EndOfResponse(turn))
            reader.settimeout(5)
            received = b""
            while len(received) < 3200:
                received += reader.recv(65536)
            assert set(np.frombuffer(received, "<i2")) == {9}
        assert thread.is_alive()
    finally:
        stalled.close()
        sender.stop_event.set()
        thread.join(2)
        sender.queue_in.put(EndOfStream())


def test_stopping_is_not_held_up_by_a_stalled_client():
    """Ctrl-C while a send waits on a client that does not read (with a
    deadline far away): the sender thread still ends within 2 s."""
    sender, _, thread = start_sender(send_timeout_s=60)
    stalled = stalled_client(sender.port)
    try:
        wait_until_accepted(sender, stalled)
        sender.queue_in.put(TTSAudio(REPLY, 16000, "a long answer", Turn()))
        time.sleep(1.0)  # the send is blocked by now
        assert thread.is_alive()
        began = time.perf_counter()
        sender.stop_event.set()
        thread.join(2)
        assert not thread.is_alive() and time.perf_counter() - began < 2
    finally:
        stalled.close()


def test_a_reply_client_that_leaves_is_let_go_at_once(caplog):
    """Not when the next reply finds it gone: until then its socket would stay
    open, half closed, on the server."""

    caplog.set_level(logging.INFO)
    sender, _, thread = start_sender(send_timeout_s=5)
    try:
        client = socket.create_connection(("127.0.0.1", sender.port))
        wait_until_accepted(sender, client)
        accepted = sender._conn
        client.close()
        deadline = time.time() + 2
        while sender._conn is not None and time.time() < deadline:
            time.sleep(0.01)
        assert sender._conn is None
        # The server's end is closed, not left half closed.  (Counting the
        # process's descriptors instead saw whatever else the process opened
        # meanwhile: under pytest-xdist, another test's threads.)
        assert accepted is not None and accepted.fileno() == -1
        assert any("disconnected" in r.message for r in caplog.records)
    finally:
        sender.stop_event.set()
        thread.join(2)
