"""`s2s_pipeline.py` as a server in a child process, for the tests and the benchmarks.

Started as README shows (socket or realtime mode, on free ports, offline),
ready once its log says so; its per-turn metrics are read back from its
`--metrics_file`, its HTTP endpoints (`/metrics`, `/healthz`, `/readyz`) are
scraped with `get`, its log and /proc figures are at hand, and it is
stopped with Ctrl-C (SIGINT), as a user stops it, or with another signal.

`LlamaServerProcess` is the language model served once for several of them
(`--llm open_api`): llama-cpp-python's own OpenAI-compatible server, as the
compose file's `scale` profile runs it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

FLAGS: dict[str, list[str]] = {
    "socket": ["--mode", "socket", "--recv_port", "0", "--send_port", "0"],
    "realtime": ["--mode", "realtime", "--realtime_port", "0"],
}
SOCKET_READY = re.compile(r"ready: send audio to port (\d+), replies come from port (\d+)")
REALTIME_READY = re.compile(r"ready: realtime API on ws://127\.0\.0\.1:(\d+)/v1/realtime")
READY: dict[str, re.Pattern[str]] = {"socket": SOCKET_READY, "realtime": REALTIME_READY}
# Where the HTTP endpoints are, logged as soon as they are served (before the models load).
METRICS_SERVED = re.compile(r"metrics, health and readiness on http://[^:]+:(\d+)/metrics")  # --metrics_port
HTTP_SERVED = {"realtime": re.compile(r"realtime API on wss?://[^:]+:(\d+)/v1/realtime"), "socket": METRICS_SERVED}


class ServerProcess:
    """One server: `recv_port` and `send_port` (socket mode) or `port` (realtime mode).

    `api_key`: the server's S2S_API_KEY (none otherwise, whatever this
    process's environment holds).  `cpus`: a taskset CPU list the server is
    confined to; `tree`: the checkout it runs from.  `suffix` tells apart the
    log and metrics files of several servers started in one `workdir`.
    `wait`: return once it is ready (else at once: see `wait_until_ready`).
    """

    def __init__(
        self,
        mode: str,
        workdir: Path,
        *extra: str,
        api_key: str | None = None,
        cpus: str | None = None,
        tree: Path = REPO,
        start_timeout_s: float = 180,
        suffix: str = "",
        wait: bool = True,
    ) -> None:
        self.mode = mode
        self.log = Path(workdir) / f"server{suffix}.log"
        self.metrics = Path(workdir) / f"metrics{suffix}.jsonl"
        self.stop_s: float | None = None  # how long the last stop() took
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        env.pop("S2S_API_KEY", None)
        if api_key:
            env["S2S_API_KEY"] = api_key
        prefix = ["taskset", "-c", cpus] if cpus else []
        self._log_handle = open(self.log, "w")
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "s2s_pipeline.py", *FLAGS[mode], "--metrics_file", str(self.metrics), *extra],
            cwd=tree, env=env, stdout=self._log_handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
        if wait:
            self.wait_until_ready(start_timeout_s)

    def wait_until_ready(self, timeout_s: float = 180) -> None:
        """Until its log says it is ready (models loaded, ports known)."""
        self._wait_for_log(READY[self.mode], timeout_s)

    def _wait_for_log(self, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            text = self.log.read_text()
            ready = READY[self.mode].search(text)
            if ready:
                if self.mode == "socket":
                    self.recv_port, self.send_port = int(ready.group(1)), int(ready.group(2))
                else:
                    self.port = int(ready.group(1))
            match = pattern.search(text)
            if match:
                return match
            if self.process.poll() is not None:
                self._log_handle.close()
                raise RuntimeError("server died while starting:\n" + self.log.read_text()[-3000:])
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not log {pattern.pattern!r}:\n" + self.log.read_text()[-3000:])

    # --- its HTTP endpoints -----------------------------------------------------------------
    def http_port(self, timeout_s: float = 60) -> int:
        """The port of /metrics, /healthz and /readyz (realtime mode: its own;
        socket mode: --metrics_port), known before the models load."""
        return int(self._wait_for_log(HTTP_SERVED[self.mode], timeout_s).group(1))

    def metrics_port(self, timeout_s: float = 60) -> int:
        """The `--metrics_port` server's port."""
        return int(self._wait_for_log(METRICS_SERVED, timeout_s).group(1))

    def get(
        self, path: str, api_key: str | None = None, port: int | None = None, timeout_s: float = 10
    ) -> tuple[int, str]:
        """(status, body) of a GET on the server's HTTP port (or `port`), errors included."""
        request = urllib.request.Request(f"http://127.0.0.1:{port or self.http_port()}{path}")
        if api_key:
            request.add_header("Authorization", f"Bearer {api_key}")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    # --- what it said -------------------------------------------------------------------
    def turns(self) -> list[dict]:
        """The per-turn metrics it has logged so far."""
        if not self.metrics.exists():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]

    def wait_for_turns(self, count: int, timeout: float = 60) -> list[dict]:
        """The metrics once `count` turns are logged, or when `timeout` is up or the server gone."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.alive():
            turns = self.turns()
            if len(turns) >= count:
                return turns
            time.sleep(0.02)
        return self.turns()

    def wait_for_turn(self, matches: Callable[[dict], bool], timeout: float = 60) -> list[dict]:
        """The metrics once a turn that `matches` is logged, or when `timeout`
        is up or the server gone.  A turn's metrics are written once it was
        heard out or cut, which on a loaded core comes seconds after the
        client saw its end."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.alive():
            turns = self.turns()
            if any(matches(turn) for turn in turns):
                return turns
            time.sleep(0.05)
        return self.turns()

    def log_size(self) -> int:
        return len(self.log.read_text())

    def wait_for_log(self, text: str, after: int, timeout: float) -> bool:
        """Whether `text` appears in the log after its first `after` characters within `timeout`."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.alive():
            if text in self.log.read_text()[after:]:
                return True
            time.sleep(0.05)
        return False

    def scrape(self, api_key: str | None = None, port: int | None = None) -> dict[tuple[str, frozenset], float]:
        """GET /metrics, parsed: {(sample name, its labels as (name, value) pairs): value}."""
        from prometheus_client.parser import text_string_to_metric_families

        status, body = self.get("/metrics", api_key, port)
        if status != 200:
            raise RuntimeError(f"GET /metrics: HTTP {status}: {body[:200]}")
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(body)
            for sample in family.samples
        }

    # --- the process ----------------------------------------------------------------------
    def alive(self) -> bool:
        return self.process.poll() is None

    def figures(self) -> dict[str, int]:
        """Resident memory (MiB), threads and open descriptors, from /proc."""
        pid = self.process.pid
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
        return {"rss_mib": rss_kib // 1024, "threads": threads, "fds": len(os.listdir(f"/proc/{pid}/fd"))}

    def stop(self, signum: int = signal.SIGINT, timeout_s: float = 15) -> int | None:
        """Send `signum` (Ctrl-C) and wait: its exit status, or None when it
        was still running after `timeout_s` and had to be killed."""
        began = time.perf_counter()
        if self.alive():
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = None
        self.stop_s = time.perf_counter() - began
        self._log_handle.close()
        return code


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# As docker-compose.yml's `llm` service runs it: several s2s servers ask at
# once, and llama_cpp.server's default (interrupt_requests) would end the
# reply it is streaming whenever another request arrives.
LLAMA_SERVER_FLAGS = ("--interrupt_requests", "False")


class LlamaServerProcess:
    """`python -m llama_cpp.server` on a packaged GGUF (models/packaged.py), on loopback; `url` is its /v1."""

    def __init__(self, model: str, workdir: Path, *extra: str, start_timeout_s: float = 120) -> None:
        from models.packaged import resolve_gguf

        port = free_port()
        self.url = f"http://127.0.0.1:{port}/v1"
        # Its log goes to a file: llama.cpp logs more than a pipe buffer holds,
        # and a pipe nobody reads would block the server.
        self.log = Path(workdir) / "llama_server.log"
        self._log_handle = open(self.log, "w")
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_gguf(model)), "--host",
                   "127.0.0.1", "--port", str(port), "--n_ctx", "2048", *LLAMA_SERVER_FLAGS, *extra]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=self._log_handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + start_timeout_s
        while True:
            if self.process.poll() is not None:
                self._log_handle.close()
                raise RuntimeError(
                    f"llama_cpp.server exited with {self.process.returncode}: {self.log.read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"llama_cpp.server did not come up within {start_timeout_s:.0f} s") from None
                time.sleep(0.5)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_handle.close()
