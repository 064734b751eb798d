"""Sends the spoken replies to the client over TCP as raw int16 mono PCM.

A background acceptor keeps the latest client; replies produced while no
client is connected are dropped (logged), never queued for a stranger.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

from connections.audio_sink import AudioSink
from connections.tcp import listen
from utils.messages import TTSAudio, Turn

logger = logging.getLogger(__name__)


class SocketSender(AudioSink):
    def setup(
        self,
        should_listen: threading.Event,
        host: str = "127.0.0.1",
        port: int = 12346,
        metrics_file: str | Path | None = None,
        playback_lead_ms: int = 150,
        yield_floor_while_speaking: bool = True,
    ) -> None:
        self.setup_sink(should_listen, metrics_file, yield_floor_while_speaking=yield_floor_while_speaking)
        self.lead_s = playback_lead_ms / 1000.0
        self._played_until = 0.0  # when the client will have played all it was sent
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
        """Send at real-time pace, at most `lead_s` ahead of the client's
        playback, in pieces: once the turn is interrupted, nothing more goes
        out, and the client falls silent within the lead."""
        if self.lead_s <= 0:
            self._send(audio.samples.astype("<i2").tobytes())
            return
        step = max(1, audio.sample_rate // 50)  # 20 ms pieces
        for start in range(0, len(audio.samples), step):
            piece = audio.samples[start : start + step]
            while (wait := self._played_until - time.perf_counter() - self.lead_s) > 0:
                if audio.turn.stale or self.stop_event.wait(min(wait, 0.01)):
                    return
            if audio.turn.stale:
                return
            self._send(piece.astype("<i2").tobytes())
            now = time.perf_counter()
            starts = max(self._played_until, now)
            self._played_until = starts + len(piece) / audio.sample_rate
            # What was heard is what was sent less what the client still has queued.
            audio.turn.playback.record_device_playback(len(piece), audio.sample_rate, starts, latency_s=0.0)

    def finish_turn(self, turn: Turn) -> None:
        """The turn ends when the client has played it (not when it was sent)."""
        while (left := self._played_until - time.perf_counter()) > 0 and not turn.stale:
            if self.stop_event.wait(min(left, 0.02)):
                return

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
