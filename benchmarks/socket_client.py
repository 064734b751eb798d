"""A client of socket mode, as a benchmark or a test needs it: the reply
connection held open with each arrival timestamped, and audio sent at the
pace a microphone would send it."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

RATE = 16000


class ReplyRecorder:
    """Holds the reply connection open and timestamps every byte that arrives."""

    def __init__(self, port: int) -> None:
        self.conn = socket.create_connection(("127.0.0.1", port))
        self.conn.settimeout(0.1)
        self.arrivals: list[tuple[float, int]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                data = self.conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.arrivals.append((time.perf_counter(), len(data)))

    def bytes_between(self, start: float, end: float) -> int:
        return sum(size for at, size in self.arrivals if start <= at < end)

    def last_arrival(self) -> float:
        return self.arrivals[-1][0] if self.arrivals else 0.0

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(2)
        self.conn.close()


def stream(conn: socket.socket, samples: np.ndarray) -> None:
    """Real-time pace, in the seed's 512-sample chunks."""
    began = time.perf_counter()
    for index, start in enumerate(range(0, len(samples), 512)):
        conn.sendall(samples[start : start + 512].astype("<i2").tobytes())
        delay = began + (index + 1) * 512 / RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
