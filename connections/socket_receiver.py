"""Receives the client's microphone over TCP: raw int16 mono 16 kHz PCM, no header.

One client at a time, and the newest wins: a client that reconnects after a
network hiccup, or a second client, takes over from one that went quiet.
Whenever a client leaves or is replaced (cleanly or mid-chunk), its partial
chunk is discarded, a new conversation session starts (stale answers for the
old client are dropped along the pipeline) and the VAD and chat history are
reset.  The server never exits because of a client.
"""

from __future__ import annotations

import logging
import queue
import selectors
import socket
import threading

import numpy as np

from connections.tcp import listen
from conversation.session import Session, SessionSettings
from utils.messages import AudioChunk, EndOfStream, ResetConversation
from utils.metrics import METRICS

logger = logging.getLogger(__name__)

POLL_S = 0.1


class SocketReceiver:
    name = "SocketReceiver"

    def __init__(
        self,
        stop_event: threading.Event,
        queue_out: queue.Queue,
        should_listen: threading.Event,
        settings: SessionSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 12345,
        chunk_size: int = 1024,
        sample_rate: int = 16000,
    ) -> None:
        self.stop_event = stop_event
        self.queue_out = queue_out
        self.should_listen = should_listen
        self.settings = settings or SessionSettings()
        # Each client is its own conversation; audio is stamped with it as it
        # arrives, so audio still queued when a client leaves never becomes a
        # turn of the next one.
        self.session = self._new_session()
        self.chunk_size = chunk_size
        self.sample_rate = sample_rate
        self.server = listen(host, port, "audio receiver", "--recv_port")
        self.port = self.server.getsockname()[1]
        self._conn: socket.socket | None = None
        self._peer = ""
        self._buffer = bytearray()

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.server, selectors.EVENT_READ)
        try:
            while not self.stop_event.is_set():
                for key, _ in selector.select(timeout=POLL_S):
                    if key.fileobj is self.server:
                        self._accept(selector)
                    else:
                        self._read(selector)
        finally:
            self._drop_client(selector, "server stopping")
            selector.close()
            self.server.close()
            self.queue_out.put(EndOfStream())

    def _accept(self, selector: selectors.BaseSelector) -> None:
        try:
            conn, address = self.server.accept()
        except OSError:
            return
        if self._conn is not None:
            self._drop_client(selector, "replaced by a new client")
        conn.setblocking(False)
        self._conn, self._peer = conn, f"{address[0]}:{address[1]}"
        selector.register(conn, selectors.EVENT_READ)
        METRICS.session_opened()
        logger.info("audio client connected from %s", self._peer)

    def _read(self, selector: selectors.BaseSelector) -> None:
        assert self._conn is not None
        try:
            data = self._conn.recv(self.chunk_size * 8)
        except BlockingIOError:
            return
        except OSError as error:
            self._drop_client(selector, f"connection error: {error}")
            return
        if not data:
            self._drop_client(selector, "disconnected")
            return
        self._buffer.extend(data)
        while len(self._buffer) >= self.chunk_size:
            chunk = bytes(self._buffer[: self.chunk_size])
            del self._buffer[: self.chunk_size]
            if self.should_listen.is_set():
                samples = np.frombuffer(chunk, dtype="<i2").astype(np.int16)
                self.queue_out.put(AudioChunk(samples=samples, sample_rate=self.sample_rate, session=self.session))

    def _new_session(self) -> Session:
        return Session(settings=SessionSettings(**vars(self.settings)))

    def _drop_client(self, selector: selectors.BaseSelector, why: str) -> None:
        if self._conn is None:
            return
        selector.unregister(self._conn)
        self._conn.close()
        self._conn = None
        METRICS.session_closed()
        if self._buffer:
            logger.info("discarding %d bytes of a partial chunk", len(self._buffer))
        self._buffer.clear()
        old, self.session = self.session, self._new_session()
        old.close()  # its turns in flight are dropped at every stage
        self.queue_out.put(ResetConversation(session=old))
        self.should_listen.set()
        logger.info("audio client %s %s; conversation reset", self._peer, why)
