"""Probes and metrics over HTTP, for load balancers, Kubernetes and Prometheus.

- `GET /healthz`: 200 while the process serves at all (liveness).
- `GET /readyz`: 200 when a new conversation would be served now (the
  models are loaded and a session is free, the server is not draining);
  503 with the reason otherwise (readiness: a load balancer sends no one
  there).
- `GET /metrics`: the process's metrics (`utils/metrics.py`) in Prometheus's
  text format.

The realtime server adds these routes to its own app, on its own port.  The
socket and local modes have no HTTP server of their own: `--metrics_port`
starts `OperationsServer`, which serves only these three (in realtime mode
too, for a port apart from the conversations': probes and Prometheus inside
a private network, no API key).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from connections.tcp import listen
from utils.metrics import METRICS
from utils.net import address_to_open

logger = logging.getLogger(__name__)


def add_operations_routes(
    app: FastAPI,
    not_ready: Callable[[], str | None],
    may_read_metrics: Callable[[Mapping[str, str]], bool] = lambda headers: True,
) -> None:
    """`not_ready()`: why no new conversation would be served now (None: it would).
    `may_read_metrics(headers)`: whether a scrape is authorised."""

    @app.get("/healthz")
    async def healthz() -> Any:
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz() -> Any:
        reason = not_ready()
        if reason is not None:
            return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
        return {"status": "ready"}

    @app.get("/metrics")
    async def metrics(request: Request) -> Any:
        if not may_read_metrics(request.headers):
            return JSONResponse(
                {"error": {"type": "invalid_request_error", "code": "invalid_api_key",
                           "message": "missing or wrong API key"}},
                status_code=401,
            )  # fmt: skip
        body, content_type = METRICS.exposition()
        return Response(body, media_type=content_type)


def serve_until_stopped(server: Any, sockets: list, stop_event: threading.Event) -> None:
    """Run a `uvicorn.Server` on already bound sockets until `stop_event` is set."""

    def stop_when_asked() -> None:
        stop_event.wait()
        server.should_exit = True

    threading.Thread(target=stop_when_asked, name=f"{threading.current_thread().name}Stop", daemon=True).start()
    server.run(sockets=sockets)


class OperationsServer:
    """Thread body: /healthz, /readyz and /metrics on `--metrics_port` (socket and local modes).

    The port is bound at construction, before the models load, so that a
    probe sees "not ready" (and not "connection refused") while they do;
    `loaded` is set once they are.
    """

    name = "OperationsServer"

    def __init__(
        self,
        stop_event: threading.Event,
        host: str = "127.0.0.1",
        port: int = 9100,
        not_ready: Callable[[], str | None] | None = None,
    ) -> None:
        """`not_ready`: the front door's own readiness (the realtime server's
        counts its sessions); by default, whether `loaded` is set."""
        self.stop_event = stop_event
        self.host = host
        self.loaded = threading.Event()
        self.not_ready = not_ready or self._not_loaded
        self.socket = listen(
            host, port, "the metrics server", "--metrics_port", accept_timeout_s=None,
            exposure="anyone who can reach it can read the metrics and probes",
        )  # fmt: skip
        self.port = self.socket.getsockname()[1]

    def _not_loaded(self) -> str | None:
        if self.stop_event.is_set():
            return "stopping"
        return None if self.loaded.is_set() else "models loading"

    def run(self) -> None:
        import uvicorn

        app = FastAPI(title="s2s operations", docs_url=None, redoc_url=None, openapi_url=None)
        add_operations_routes(app, self.not_ready)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        logger.info(
            "metrics, health and readiness on http://%s:%d/metrics, /healthz, /readyz",
            address_to_open(self.host),
            self.port,
        )
        serve_until_stopped(uvicorn.Server(config), [self.socket], self.stop_event)
