"""Sends the spoken replies to the client over TCP as raw int16 mono PCM.

A background acceptor keeps the latest client; replies produced while no
client is connected are dropped (logged), never queued for a stranger.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from baseHandler import BaseHandler
from connections.tcp import listen
from utils.messages import EndOfResponse, TTSAudio
from utils.turn_log import report_turn

logger = logging.getLogger(__name__)


class SocketSender(BaseHandler):
    accepts = (TTSAudio, EndOfResponse)

    def setup(
        self,
        should_listen: threading.Event,
        host: str = "127.0.0.1",
        port: int = 12346,
        metrics_file: str | Path | None = None,
    ) -> None:
        self.should_listen = should_listen
        self.metrics_file = Path(metrics_file) if metrics_file else None
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

    def process(self, message: TTSAudio | EndOfResponse) -> Iterator[None]:
        turn = message.turn
        if isinstance(message, TTSAudio):
            turn.mark("first_audio_out")
            self._send(message.samples.astype("<i2").tobytes())
            return
        turn.mark("last_audio_out")
        report_turn(turn, self.metrics_file)
        self.should_listen.set()
        yield from ()

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
