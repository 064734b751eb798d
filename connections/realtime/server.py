"""The realtime front door: the OpenAI Realtime API over WebSocket, many conversations at once.

A FastAPI app served by uvicorn in its own thread.  `/v1/realtime` takes
one WebSocket per conversation (the official SDK connects with
`OpenAI(base_url="http://HOST:PORT/v1").realtime.connect(model=...)`); each
becomes a `RealtimeConnection` feeding the one shared pipeline.
`POST /v1/realtime/client_secrets` mints short-lived tokens for browsers,
`GET /` serves the talk page, and `/healthz`, `/readyz` and `/metrics` are
for load balancers, Kubernetes and Prometheus (`connections/operations.py`).

The port is bound and served before any model loads: a port in use fails in
a second and names itself, and a probe hears "not ready" while the models
load (a conversation that connects then waits for them).

`drain()` (SIGTERM) stops taking new conversations and lets the turns under
way finish: each conversation is closed, with an `error` event saying why,
as soon as nothing of it is in flight, and the server stops once all are
closed or `drain_timeout_s` has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
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

from connections.operations import add_operations_routes, serve_until_stopped
from connections.realtime.connection import RealtimeConnection, RealtimeOptions
from connections.realtime.events import dump, error
from connections.realtime.ws_protocol import ErrorBeforeCloseProtocol
from connections.tcp import listen
from conversation.session import Session
from conversation.turn import Turn
from utils.messages import EndOfStream
from utils.metrics import METRICS
from utils.net import address_to_open

logger = logging.getLogger(__name__)

SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."
SEND_BUFFER_BYTES = 128 * 1024
STATIC = Path(__file__).resolve().parent / "static"
DRAIN_POLL_S = 0.05
GOING_AWAY = 1001  # WebSocket close code: the server is going down
FLUSH_TIMEOUT_S = 5.0  # a departing conversation's last events get this long to go out
SHUTTING_DOWN = "server_shutting_down"


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


class DrainableConnection(RealtimeConnection):
    """A connection that says whether a turn of it is under way: the user
    speaking, or a reply being made or sent (until its `response.done` has
    gone to the client, after all its paced audio).  A draining server closes it only once none is."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.speaking = False

    def speech_started(self, session: Session, audio_ms: int) -> None:
        self.speaking = True
        super().speech_started(session, audio_ms)

    def speech_stopped(self, session: Session, audio_ms: int) -> None:
        super().speech_stopped(session, audio_ms)
        self.speaking = False

    def response_done(self, turn: Turn) -> None:
        super().response_done(turn)
        # Once its last event is out, not merely queued: a paced reply's audio
        # still waiting its time was dropped at the drain's close (0.4 s of a
        # 2 s reply heard, then response.done "completed").
        self.mark_when_sent(turn, "response_sent")

    def cancel_for_shutdown(self) -> None:
        """The drain's time is up with a reply under way: cancel it, so the
        client still gets the reply's `response.done` before the farewell."""
        turn = self._active_turn()
        if turn is not None:
            self.cancel_response(turn, None)

    def busy(self) -> bool:
        turn = self.session.active_turn
        replying = turn is not None and not turn.withdrawn and "response_sent" not in turn.marks
        return self.speaking or replying


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
        self.connections: dict[Session, DrainableConnection] = {}
        self.sessions_served = 0
        self.loaded = threading.Event()  # the models are loaded: conversations are served
        self.draining = threading.Event()
        self._send_away: dict[Session, asyncio.Event] = {}  # set: close that conversation now
        METRICS.sessions_max.set(max_sessions)
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
            exposure="only clients with its API key get in"
            if self.api_key
            else "anyone who can reach it can talk to the assistant",
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

    # --- readiness and drain -------------------------------------------------------------
    def not_ready(self) -> str | None:
        """Why a new conversation would not be served now (None: it would)."""
        if not self.loaded.is_set():
            return "models loading"
        if self.draining.is_set() or self.stop_event.is_set():
            return "shutting down"
        if len(self.connections) >= self.max_sessions:
            return f"all {self.max_sessions} sessions in use"
        return None

    def drain(self, timeout_s: float) -> None:
        """Stop taking conversations; close each open one once nothing of it
        is in flight, or when `timeout_s` is up; then stop the server.  Returns
        at once (it is called from a signal handler)."""
        if self.draining.is_set():
            return
        self.draining.set()
        METRICS.draining.set(1)
        busy = sum(connection.busy() for connection in list(self.connections.values()))
        logger.info(
            "draining: no new conversations; %d open (%d with a turn under way), up to %.0f s",
            len(self.connections), busy, timeout_s,
        )  # fmt: skip
        threading.Thread(target=self._drain, args=(timeout_s,), name="RealtimeServerDrain", daemon=True).start()

    def _drain(self, timeout_s: float) -> None:
        began = time.monotonic()
        deadline = began + timeout_s
        told: set[Session] = set()
        idle_before: set[Session] = set()
        while time.monotonic() < deadline and not self.stop_event.is_set():
            open_now = dict(self.connections)
            if not open_now.keys() - told:
                break
            idle_now = {session for session, connection in open_now.items() if not connection.busy()}
            # Idle at two looks in a row: a turn does not slip in between the
            # end of the user's speech and its reply being under way.
            for session in (idle_now & idle_before) - told:
                self._close_for_drain(open_now[session], "this server is shutting down; reconnect to go on")
                told.add(session)
            idle_before = idle_now
            time.sleep(DRAIN_POLL_S)
        left = {session: connection for session, connection in self.connections.items() if session not in told}
        cut = {session for session, connection in left.items() if connection.busy()}
        for session in cut:
            left[session].cancel_for_shutdown()
        # The cancelled replies' response.done go out before the farewells.
        cancelled_by = time.monotonic() + FLUSH_TIMEOUT_S
        while any(left[session].busy() for session in cut) and time.monotonic() < cancelled_by:
            time.sleep(DRAIN_POLL_S)
        for session, connection in left.items():
            self._close_for_drain(connection, "this server is shutting down; " + (
                "the reply in progress was cut short" if session in cut else "reconnect to go on"))  # fmt: skip
        if cut:
            logger.warning("drain: %.0f s passed; %d conversation(s) cut short", timeout_s, len(cut))
        give_up = time.monotonic() + FLUSH_TIMEOUT_S + 1.0
        while self.connections and time.monotonic() < give_up:
            time.sleep(DRAIN_POLL_S)
        logger.info("drained in %.1f s: stopping", time.monotonic() - began)
        self.stop_event.set()

    def _close_for_drain(self, connection: DrainableConnection, why: str) -> None:
        """Tell the conversation why, then close it (its handler flushes what is queued first)."""
        leave = self._send_away.get(connection.session)
        if leave is None:
            return  # it is closing by itself
        connection.emit(error(SHUTTING_DOWN, why))
        try:
            connection.loop.call_soon_threadsafe(leave.set)
        except RuntimeError:  # the loop is closed: the server stopped already
            pass

    # --- app ----------------------------------------------------------------------------
    def app(self) -> Any:
        app = FastAPI(title="s2s realtime", docs_url=None, redoc_url=None)
        add_operations_routes(app, self.not_ready, self._holds_server_key)

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

        @app.get("/v1/realtime")
        async def not_a_websocket() -> Any:
            """A browser or curl pointed at the API's address: say what it is."""
            message = "the Realtime API is a WebSocket: connect with a Realtime API client (ws:// or wss://)"
            return JSONResponse(
                _http_error("websocket_required", message), status_code=426, headers={"Upgrade": "websocket"}
            )

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
            while not self.loaded.is_set():  # a conversation waits while the models load
                if self.stop_event.is_set():
                    return
                await asyncio.sleep(0.1)
            await websocket.accept(subprotocol=subprotocol)
            if self.draining.is_set() or self.stop_event.is_set():
                await self._refuse(websocket, SHUTTING_DOWN, "this server is shutting down; connect again to reach "
                                   "another one", GOING_AWAY, "server shutting down")  # fmt: skip
                return
            if len(self.connections) >= self.max_sessions:
                await self._refuse(websocket, "session_limit_reached", f"this server holds at most "
                                   f"{self.max_sessions} conversations at once; try again later", 1013,
                                   "session limit reached")  # fmt: skip
                return
            connection = DrainableConnection(
                websocket.send_text, asyncio.get_running_loop(), self.pipeline_in, self.options
            )
            self.connections[connection.session] = connection
            leave = self._send_away[connection.session] = asyncio.Event()
            self.sessions_served += 1
            METRICS.session_opened()
            logger.info("realtime session %s opened (%d active)", connection.session.id, len(self.connections))
            writer = asyncio.create_task(connection.writer())
            sent_away = asyncio.create_task(leave.wait())
            connection.start()
            reason = "client closed"
            try:
                while not connection.closed:
                    receiver = asyncio.create_task(websocket.receive())
                    done, _ = await asyncio.wait({receiver, writer, sent_away}, return_when=asyncio.FIRST_COMPLETED)
                    if sent_away in done:
                        receiver.cancel()
                        reason = "server shutting down"
                        break
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
                if leave.is_set():  # sent away: its last events (the error saying why) go out first
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(writer), FLUSH_TIMEOUT_S)
                writer.cancel()
                sent_away.cancel()
                self.connections.pop(connection.session, None)
                self._send_away.pop(connection.session, None)
                METRICS.session_closed()
                try:
                    if leave.is_set():
                        await websocket.close(code=GOING_AWAY, reason="server shutting down")
                    else:
                        await websocket.close()
                except Exception:
                    pass
                logger.info(
                    "realtime session %s closed: %s (%d active)", connection.session.id, reason, len(self.connections)
                )

        return app

    @staticmethod
    async def _refuse(websocket: WebSocket, code: str, message: str, close_code: int, close_reason: str) -> None:
        """An accepted WebSocket that gets no conversation: one `error` event, then a clean close."""
        await websocket.send_text(dump(error(code, message)))
        await websocket.close(code=close_code, reason=close_reason)

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
        scheme = "wss" if certfile else "ws"
        where = address_to_open(self.host)
        logger.info("realtime API on %s://%s:%d/v1/realtime", scheme, where, self.port)
        logger.info("talk page on %s://%s:%d/", "https" if certfile else "http", where, self.port)
        try:
            self.started.set()
            serve_until_stopped(self._server, [self.socket], self.stop_event)
        finally:
            self.stop_event.set()
            self.pipeline_in.put(EndOfStream())


def _http_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "code": code, "message": message}}
