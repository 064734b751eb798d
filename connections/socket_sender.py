"""Sends the spoken replies to the client over TCP as raw int16 mono PCM.

A background acceptor keeps the latest client; replies produced while no
client is connected are dropped (logged), never queued for a stranger.
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

from connections.audio_sink import AudioSink
from connections.tcp import listen
from utils.messages import TTSAudio

logger = logging.getLogger(__name__)


class SocketSender(AudioSink):
    def setup(
        self,
        should_listen: threading.Event,
        host: str = "127.0.0.1",
        port: int = 12346,
        metrics_file: str | Path | None = None,
    ) -> None:
        self.setup_sink(should_listen, metrics_file)
        self.server = listen(host, port, "reply sender")
        self.port = self.server.getsockname()[1]
        self._conn: socket.socket | None = None
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept_loop, name="SocketSenderAccept", daemon=True)
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                conn, address = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            logger.info("reply client connected from %s:%d", *address[:2])
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                self._conn = conn

    def output(self, audio: TTSAudio) -> None:
        self._send(audio.samples.astype("<i2").tobytes())

    def _send(self, payload: bytes) -> None:
        with self._lock:
            conn = self._conn
        if conn is None:
            logger.warning("no reply client connected: %d bytes of reply dropped", len(payload))
            return
        try:
            conn.sendall(payload)
        except OSError as error:
            logger.info("reply client gone (%s)", error)
            with self._lock:
                if self._conn is conn:
                    self._conn = None
            conn.close()

    def cleanup(self) -> None:
        self.server.close()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
