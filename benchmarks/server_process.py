"""`s2s_pipeline.py` as a server in a child process, for the tests and the benchmarks.

Started as README shows (socket or realtime mode, on free ports, offline),
ready once its log says so; its per-turn metrics are read back from its
`--metrics_file`, its log and /proc figures are at hand, and it is stopped
with Ctrl-C (SIGINT), as a user stops it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

FLAGS: dict[str, list[str]] = {
    "socket": ["--mode", "socket", "--recv_port", "0", "--send_port", "0"],
    "realtime": ["--mode", "realtime", "--realtime_port", "0"],
}
SOCKET_READY = re.compile(r"ready: send audio to port (\d+), replies come from port (\d+)")
REALTIME_READY = re.compile(r"ready: realtime API on ws://127\.0\.0\.1:(\d+)/v1/realtime")
READY: dict[str, re.Pattern[str]] = {"socket": SOCKET_READY, "realtime": REALTIME_READY}


class ServerProcess:
    """One server: `recv_port` and `send_port` (socket mode) or `port` (realtime mode).

    `api_key`: the server's S2S_API_KEY (none otherwise, whatever this
    process's environment holds).  `cpus`: a taskset CPU list the server is
    confined to; `tree`: the checkout it runs from.  `suffix` tells apart the
    log and metrics files of several servers started in one `workdir`.
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
        deadline = time.time() + start_timeout_s
        while time.time() < deadline:
            match = READY[mode].search(self.log.read_text())
            if match:
                if mode == "socket":
                    self.recv_port, self.send_port = int(match.group(1)), int(match.group(2))
                else:
                    self.port = int(match.group(1))
                return
            if self.process.poll() is not None:
                self._log_handle.close()
                raise RuntimeError("server died while starting:\n" + self.log.read_text()[-3000:])
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start:\n" + self.log.read_text()[-3000:])

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
