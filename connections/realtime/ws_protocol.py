"""uvicorn's WebSocket protocol, with an `error` event before a too-large message closes the connection.

A message over the WebSocket limit (`ws_max_size`) cannot be read and
skipped: the frame parser gives up on the connection, which must close with
1009 (message too big).  The client would learn only that code, not what went
wrong, so the realtime API's `error` event naming the limit goes out first,
then the close frame.  The rest of the client's message is still read (and
dropped) before the connection closes: a socket closed with unread data is
reset, and a reset would make the client lose the two frames sent to it.
Messages under the limit but over the server's own per-event limit get the
`error` event and the session goes on (`RealtimeConnection.receive`).
"""

from __future__ import annotations

import logging

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import PayloadTooBig
from websockets.frames import Frame, Opcode

from connections.realtime.events import dump, error

logger = logging.getLogger(__name__)

QUIET_S = 1.0  # the client has sent nothing more for this long: close
MAX_DRAIN_S = 30.0  # close by then whatever the client still sends


class ErrorBeforeCloseProtocol(WebSocketsSansIOProtocol):
    _drain_deadline: float | None = None

    def handle_parser_exception(self) -> None:
        if not (isinstance(self.conn.parser_exc, PayloadTooBig) and self.handshake_complete):
            super().handle_parser_exception()
            return
        if self._drain_deadline is None:
            self._refuse_message()
            self._drain_deadline = self.loop.time() + MAX_DRAIN_S
        elif self.close_timer is not None:
            self.close_timer.cancel()  # more of the message arrived, and was dropped
        # uvicorn's own closing-handshake timer: while it is set, the end of the
        # application's handler does not close the socket either.
        quiet = min(QUIET_S, max(0.0, self._drain_deadline - self.loop.time()))
        self.close_timer = self.loop.call_later(quiet, self.transport.close)

    def _refuse_message(self) -> None:
        limit = self.config.ws_max_size
        logger.warning("realtime: a message over the %d-byte WebSocket limit; closing that connection", limit)
        event = error(
            "message_too_large",
            f"a WebSocket message over {limit} bytes cannot be read; the connection closes (1009). "
            "Send audio in smaller input_audio_buffer.append events",
        )
        # Unmasked and uncompressed: valid whatever extensions were agreed.
        self.transport.write(Frame(Opcode.TEXT, dump(event).encode()).serialize(mask=False, extensions=[]))
        # The close frame; not the end of the stream that follows it (b""), so
        # the rest of the message can still be read.
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        close = self.conn.close_sent
        self.queue.put_nowait({"type": "websocket.disconnect", "code": close.code, "reason": close.reason})
