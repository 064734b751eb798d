"""Ctrl-C for programs that a shell may start in the background, and that load models for a while."""

from __future__ import annotations

import signal
import threading
from types import FrameType

_requested = threading.Event()


def listen_for_ctrl_c() -> None:
    """Make SIGINT stop the program, whatever this process inherited.

    A shell starts a background job (`python s2s_pipeline.py &`) with SIGINT
    ignored, and Python then leaves it ignored: `kill -INT` (or Ctrl-C from
    a supervisor or test harness that starts it so) was lost, and the
    program went on as if nothing had been asked.

    The request is also remembered (`ctrl_c_requested`): a KeyboardInterrupt
    raised while a C library calls back into Python (llama.cpp logs through a
    ctypes callback while it loads a model) is printed and dropped by ctypes,
    so code that loads models checks the request between steps as well.
    """
    signal.signal(signal.SIGINT, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _requested.set()
    raise KeyboardInterrupt


def ctrl_c_requested() -> bool:
    """Whether Ctrl-C came since `listen_for_ctrl_c` (even if its KeyboardInterrupt was lost)."""
    return _requested.is_set()


def stop_if_ctrl_c_requested() -> None:
    """Raise the KeyboardInterrupt that a C callback may have swallowed."""
    if _requested.is_set():
        raise KeyboardInterrupt
