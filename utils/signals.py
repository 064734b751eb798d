"""Ctrl-C for programs that a shell may start in the background."""

from __future__ import annotations

import signal


def listen_for_ctrl_c() -> None:
    """Make SIGINT raise KeyboardInterrupt, whatever this process inherited.

    A shell starts a background job (`python s2s_pipeline.py &`) with SIGINT
    ignored, and Python then leaves it ignored: `kill -INT` (or Ctrl-C from
    a supervisor or test harness that starts it so) was lost, and the
    program went on as if nothing had been asked.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
