"""Sends the spoken replies to the client over TCP as raw int16 mono PCM.

A background acceptor keeps the latest client; replies produced while no
client is connected are dropped (logged), never queued for a stranger.

Sends have a deadline.  A client that stays connected but stops reading (a
frozen app, a network partition) would otherwise block the send for good:
the turn would never end, the server would never listen again, and the next
client would never be served.  The socket is non-blocking; a reply waits for
room in the send buffer at most `send_timeout_s` without progress, then the
client is dropped and logged.  The send buffer is capped so that a stalled
client is found after seconds of reply audio, not after the megabytes Linux
would otherwise let it grow to.
"""

from __future__ import annotations

import logging
import select
import selectors
import socket
import threading
import time
from pathlib import Path

from connections.audio_sink import AudioSink
from connections.server_tools import ServerTools
from connections.tcp import listen
from conversation.playback import ListenerClock
from conversation.turn import Turn
from utils.messages import TTSAudio

logger = logging.getLogger(__name__)

# 64 KiB requested (the kernel doubles it): about 4 s of 16 kHz int16 audio in
# flight, plenty for any client that reads as it plays, even far away.
REPLY_SEND_BUFFER = 64 * 1024
_WAIT_STEP_S = 0.1  # how often a waiting send looks at stop and at a newer client


class SocketSender(AudioSink):
    def setup(
        self,
        should_listen: threading.Event,
        host: str = "127.0.0.1",
        port: int = 12346,
        metrics_file: str | Path | None = None,
        playback_lead_ms: int = 150,
        yield_floor_while_speaking: bool = True,
        send_timeout_s: float = 5.0,
        tools: ServerTools | None = None,
    ) -> None:
        self.setup_sink(should_listen, metrics_file, yield_floor_while_speaking=yield_floor_while_speaking, tools=tools)
        self.clock = ListenerClock(playback_lead_ms / 1000.0)  # the client's playback, as sent
        self.send_timeout_s = send_timeout_s
        self.server = listen(host, port, "reply sender", "--send_port")
        self.port = self.server.getsockname()[1]
        self._conn: socket.socket | None = None
        self._peer = ""
        self._lock = threading.Lock()
        self._acceptor = self.start_worker(self._accept_loop, "SocketSenderAccept")

    def _accept_loop(self) -> None:
        """Take each new client, and notice when the current one leaves: a
        client that closed its end is let go at once, not when the next reply
        finds it gone (its socket would linger, half closed, until then)."""
        selector = selectors.DefaultSelector()
        selector.register(self.server, selectors.EVENT_READ)
        watched: socket.socket | None = None
        try:
            while not self.stop_event.is_set():
                with self._lock:
                    current = self._conn
                if current is not watched:
                    if watched is not None:
                        selector.unregister(watched)
                    if current is not None:
                        selector.register(current, selectors.EVENT_READ)
                    watched = current
                for key, _ in selector.select(timeout=_WAIT_STEP_S):
                    if key.fileobj is self.server:
                        self._accept()
                    else:
                        self._notice_leaving(key.fileobj)
        except OSError:
            if not (self.stop_event.is_set() or self.server.fileno() == -1):
                raise  # not closed by cleanup(): a real failure, which stops the pipeline
        finally:
            selector.close()

    def _accept(self) -> None:
        try:
            conn, address = self.server.accept()
        except (BlockingIOError, TimeoutError):
            return
        except OSError as error:
            if self.stop_event.is_set() or self.server.fileno() == -1:
                return  # closed by cleanup()
            logger.warning("reply sender cannot accept (%s); retrying", error)  # e.g. out of file descriptors
            time.sleep(_WAIT_STEP_S)
            return
        conn.setblocking(False)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, REPLY_SEND_BUFFER)
        peer = f"{address[0]}:{address[1]}"
        logger.info("reply client connected from %s", peer)
        with self._lock:
            old, self._conn, self._peer = self._conn, conn, peer
        if old is not None:
            old.close()

    def _notice_leaving(self, conn: socket.socket) -> None:
        """The reply connection is readable: the client left (or, against the
        protocol, sent something, which is discarded)."""
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            return
        except OSError as error:
            self._drop(conn, f"reply client {self._peer} gone ({error})", level=logging.INFO)
            return
        if not data:
            self._drop(conn, f"reply client {self._peer} disconnected", level=logging.INFO)

    def output(self, audio: TTSAudio) -> None:
        """Send at real-time pace, at most `lead_s` ahead of the client's
        playback, in pieces: once the turn is interrupted, nothing more goes
        out, and the client falls silent within the lead; while it is paused
        (a sound over it is judged), nothing goes out until it resumes."""
        if self.clock.lead_s <= 0:
            self._send(audio.samples.astype("<i2").tobytes())
            return
        step = max(1, audio.sample_rate // 50)  # 20 ms pieces
        playback = audio.turn.playback
        for start in range(0, len(audio.samples), step):
            piece = audio.samples[start : start + step]
            while (wait := self.clock.wait_s()) > 0 or playback.paused():
                if audio.turn.stale or self.stop_event.wait(min(wait, 0.01) if wait > 0 else 0.01):
                    return
            if audio.turn.stale:
                return
            if not self._send(piece.astype("<i2").tobytes()):
                return  # the client is gone: the rest of this reply is for nobody
            self.clock.sent(playback, len(piece), audio.sample_rate)

    def finish_turn(self, turn: Turn) -> None:
        """The turn ends when the client has played it (not when it was sent)."""
        while (left := self.clock.played_until - time.perf_counter()) > 0 and not turn.stale:
            if self.stop_event.wait(min(left, 0.02)):
                return

    def _send(self, payload: bytes) -> bool:
        """Send it all to the current client; False when no client took it
        (none connected, or it was dropped on the way)."""
        with self._lock:
            conn, peer = self._conn, self._peer
        if conn is None:
            logger.warning("no reply client connected: %d bytes of reply dropped", len(payload))
            return False
        pending = memoryview(payload)
        deadline = time.monotonic() + self.send_timeout_s
        while pending:
            if self.stop_event.is_set() or self._conn is not conn:
                return False  # stopping, or a newer client took over: the rest is not for it
            try:
                sent = conn.send(pending)
            except BlockingIOError:
                sent = 0
            except OSError as error:
                self._drop(conn, f"reply client {peer} gone ({error})")
                return False
            if sent:
                pending = pending[sent:]
                deadline = time.monotonic() + self.send_timeout_s
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                self._drop(
                    conn,
                    f"reply client {peer} read nothing for {self.send_timeout_s:g} s (--send_timeout_s): "
                    f"dropped it and {len(pending)} bytes of reply",
                )
                return False
            try:
                select.select([], [conn], [], min(left, _WAIT_STEP_S))
            except (OSError, ValueError):  # closed under us by a newer client or cleanup
                return False
        return True

    def _drop(self, conn: socket.socket, why: str, level: int = logging.WARNING) -> None:
        with self._lock:
            current = self._conn is conn
            if current:
                self._conn = None
        if current:
            logger.log(level, "%s", why)
        conn.close()

    def cleanup(self) -> None:
        self.server.close()
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
