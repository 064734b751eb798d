"""Receives the client's microphone over TCP: raw int16 mono 16 kHz PCM, no header.

One client at a time; when it goes away (cleanly or mid-chunk) the partial
chunk is discarded, the conversation is reset, and the next client is
accepted.  The server never exits because of a client.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading

import numpy as np

from connections.tcp import listen
from utils.messages import AudioChunk, EndOfStream, ResetConversation

logger = logging.getLogger(__name__)

RECV_POLL_S = 0.2


class SocketReceiver:
    name = "SocketReceiver"

    def __init__(
        self,
        stop_event: threading.Event,
        queue_out: queue.Queue,
        should_listen: threading.Event,
        host: str = "127.0.0.1",
        port: int = 12345,
        chunk_size: int = 1024,
        sample_rate: int = 16000,
    ) -> None:
        self.stop_event = stop_event
        self.queue_out = queue_out
        self.should_listen = should_listen
        self.chunk_size = chunk_size
        self.sample_rate = sample_rate
        self.server = listen(host, port, "audio receiver")
        self.port = self.server.getsockname()[1]
        self.clients_served = 0

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                try:
                    conn, address = self.server.accept()
                except TimeoutError:
                    continue
                logger.info("audio client connected from %s:%d", *address[:2])
                try:
                    self._serve(conn)
                finally:
                    conn.close()
                    self.clients_served += 1
                    logger.info("audio client %s:%d gone; conversation reset", *address[:2])
                    self.queue_out.put(ResetConversation())
                    self.should_listen.set()
        finally:
            self.server.close()
            self.queue_out.put(EndOfStream())

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(RECV_POLL_S)
        buffer = bytearray()
        while not self.stop_event.is_set():
            try:
                data = conn.recv(self.chunk_size * 4)
            except TimeoutError:
                continue
            except OSError as error:
                logger.info("audio client connection error: %s", error)
                return
            if not data:
                return
            buffer.extend(data)
            while len(buffer) >= self.chunk_size:
                chunk = bytes(buffer[: self.chunk_size])
                del buffer[: self.chunk_size]
                if self.should_listen.is_set():
                    samples = np.frombuffer(chunk, dtype="<i2").astype(np.int16)
                    self.queue_out.put(AudioChunk(samples=samples, sample_rate=self.sample_rate))
