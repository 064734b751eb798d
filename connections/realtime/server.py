"""The realtime front door: the OpenAI Realtime API over WebSocket, many conversations at once.

A FastAPI app served by uvicorn in its own thread.  `/v1/realtime` takes
one WebSocket per conversation (the official SDK connects with
`OpenAI(base_url="http://HOST:PORT/v1").realtime.connect(model=...)`); each
becomes a `RealtimeConnection` feeding the one shared pipeline.
`POST /v1/realtime/client_secrets` mints short-lived tokens for browsers, and
`GET /` serves the talk page.

The port is bound before any model loads, so a port in use fails in a second
and names itself.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse

from connections.realtime.connection import RealtimeConnection, RealtimeOptions
from connections.realtime.events import dump, error
from connections.realtime.ws_protocol import ErrorBeforeCloseProtocol
from connections.tcp import listen
from conversation.session import Session
from utils.messages import EndOfStream

logger = logging.getLogger(__name__)

SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."
SEND_BUFFER_BYTES = 128 * 1024
STATIC = Path(__file__).resolve().parent / "static"


@dataclass
class ClientSecrets:
    """Short-lived tokens a browser page may connect with instead of the server key."""

    ttl_s: float = 600.0
    _tokens: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def mint(self, ttl_s: float | None = None) -> tuple[str, float]:
        token = "ek_" + secrets.token_urlsafe(24)
        expires = time.time() + (ttl_s or self.ttl_s)
        with self._lock:
            now = time.time()
            self._tokens = {key: until for key, until in self._tokens.items() if until > now}
            self._tokens[token] = expires
        return token, expires

    def valid(self, token: str) -> bool:
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and expires > time.time()


class RealtimeServer:
    """Thread body: serves the realtime API until the stop event is set."""

    name = "RealtimeServer"

    def __init__(
        self,
        stop_event: threading.Event,
        pipeline_in: queue.Queue,
        options: RealtimeOptions,
        host: str = "127.0.0.1",
        port: int = 8765,
        api_key: str | None = None,
        max_sessions: int = 4,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self.stop_event = stop_event
        self.pipeline_in = pipeline_in
        self.options = options
        self.host = host
        self.api_key = api_key or None
        self.max_sessions = max_sessions
        self.ssl = (ssl_certfile, ssl_keyfile)
        self.secrets = ClientSecrets()
        # Each open conversation's connection, by its session: the sink sends a
        # turn's reply audio through the connection of the turn's session.
        self.connections: dict[Session, RealtimeConnection] = {}
        self.sessions_served = 0
        # Listening before any model loads: a port in use fails in a second.
        # Accepted connections inherit the send buffer: a few seconds of reply
        # audio in flight (far more than a client that reads as it plays
        # needs), so a client that stops reading blocks a send soon and is
        # dropped (SEND_TIMEOUT_S), instead of Linux growing the buffer to
        # megabytes first.
        self.socket = listen(
            host,
            port,
            "the realtime server",
            "--realtime_port",
            send_buffer_bytes=SEND_BUFFER_BYTES,
            accept_timeout_s=None,
        )
        self.port = self.socket.getsockname()[1]
        self.started = threading.Event()
        self._server: Any = None

    # --- auth ---------------------------------------------------------------------------
    def _key_matches(self, token: str | None) -> bool:
        if self.api_key is None:
            return True
        if not token:
            return False
        return hmac.compare_digest(token.encode(), self.api_key.encode()) or self.secrets.valid(token)

    def _holds_server_key(self, headers: Any) -> bool:
        """Only the server key mints client tokens: a token able to mint its successor would never expire."""
        if self.api_key is None:
            return True
        authorization = headers.get("authorization", "")
        token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        return hmac.compare_digest(token.encode(), self.api_key.encode())

    def authorized(self, headers: Any, subprotocols: list[str]) -> tuple[bool, str | None]:
        """(allowed, subprotocol to accept): a Bearer header, or the browser's
        `openai-insecure-api-key.<token>` subprotocol."""
        chosen = None
        token = None
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        for protocol in subprotocols:
            if protocol.startswith(SUBPROTOCOL_KEY_PREFIX):
                token = token or protocol[len(SUBPROTOCOL_KEY_PREFIX) :]
                chosen = "realtime" if "realtime" in subprotocols else protocol
            elif protocol == "realtime" and chosen is None:
                chosen = protocol
        return self._key_matches(token), chosen

    # --- app ----------------------------------------------------------------------------
    def app(self) -> Any:
        app = FastAPI(title="s2s realtime", docs_url=None, redoc_url=None)

        @app.get("/")
        async def page() -> Any:
            index = STATIC / "index.html"
            if not index.is_file():
                return JSONResponse({"error": "no page installed"}, status_code=404)
            return FileResponse(index, media_type="text/html")

        @app.post("/v1/realtime/client_secrets")
        async def client_secrets(request: Request) -> Any:
            if not self._holds_server_key(request.headers):
                return JSONResponse(_http_error("invalid_api_key", "missing or wrong API key"), status_code=401)
            try:
                body = await request.json()
            except Exception:
                body = {}
            seconds = ((body or {}).get("expires_after") or {}).get("seconds") if isinstance(body, dict) else None
            ttl = float(seconds) if isinstance(seconds, int | float) and 10 <= seconds <= 7200 else None
            token, expires = self.secrets.mint(ttl)
            return {
                "value": token,
                "expires_at": int(expires),
                "session": {"type": "realtime", "model": self.options.model},
            }

        @app.websocket("/v1/realtime")
        async def realtime(websocket: WebSocket) -> None:
            subprotocols = list(websocket.scope.get("subprotocols") or [])
            ok, subprotocol = self.authorized(websocket.headers, subprotocols)
            if not ok:
                logger.info("realtime: connection refused (missing or wrong API key)")
                await websocket.send_denial_response(
                    JSONResponse(_http_error("invalid_api_key", "missing or wrong API key"), status_code=401)
                )
                return
            await websocket.accept(subprotocol=subprotocol)
            if len(self.connections) >= self.max_sessions:
                await websocket.send_text(
                    dump(
                        error(
                            "session_limit_reached",
                            f"this server holds at most {self.max_sessions} conversations at once; try again later",
                        )
                    )
                )
                await websocket.close(code=1013, reason="session limit reached")
                return
            connection = RealtimeConnection(
                websocket.send_text, asyncio.get_running_loop(), self.pipeline_in, self.options
            )
            self.connections[connection.session] = connection
            self.sessions_served += 1
            logger.info("realtime session %s opened (%d active)", connection.session.id, len(self.connections))
            writer = asyncio.create_task(connection.writer())
            connection.start()
            reason = "client closed"
            try:
                while not connection.closed:
                    receiver = asyncio.create_task(websocket.receive())
                    done, _ = await asyncio.wait({receiver, writer}, return_when=asyncio.FIRST_COMPLETED)
                    if receiver not in done:  # the writer ended: the client stopped reading
                        receiver.cancel()
                        reason = "client not reading"
                        break
                    message = receiver.result()
                    if message["type"] == "websocket.disconnect":
                        break
                    text = message.get("text")
                    connection.receive(text if text is not None else message.get("bytes") or b"")
            except (WebSocketDisconnect, RuntimeError, OSError) as problem:
                reason = f"connection lost ({type(problem).__name__})"
            finally:
                connection.close()
                self.connections.pop(connection.session, None)
                writer.cancel()
                try:
                    await websocket.close()
                except Exception:
                    pass
                logger.info(
                    "realtime session %s closed: %s (%d active)", connection.session.id, reason, len(self.connections)
                )

        return app

    # --- thread body -------------------------------------------------------------------------
    def run(self) -> None:
        import uvicorn

        certfile, keyfile = self.ssl
        config = uvicorn.Config(
            self.app(),
            log_level="warning",
            ws=ErrorBeforeCloseProtocol,  # websockets-sansio, with an `error` event before a 1009 close
            ws_max_size=16 * 1024 * 1024,
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
            timeout_graceful_shutdown=1,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        watcher = threading.Thread(target=self._stop_when_asked, name="RealtimeServerStop", daemon=True)
        watcher.start()
        scheme = "wss" if certfile else "ws"
        logger.info("realtime API on %s://%s:%d/v1/realtime", scheme, self.host, self.port)
        logger.info("talk page on %s://%s:%d/", "https" if certfile else "http", self.host, self.port)
        try:
            self.started.set()
            self._server.run(sockets=[self.socket])
        finally:
            self.stop_event.set()
            self.pipeline_in.put(EndOfStream())

    def _stop_when_asked(self) -> None:
        self.stop_event.wait()
        if self._server is not None:
            self._server.should_exit = True


def _http_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "code": code, "message": message}}
