"""Loading checkpoints from the Hugging Face hub without waiting on a network that is not there.

`from_pretrained` on a model that is not in the local cache asks the hub, and
when the hub cannot be reached it retries with back-off: measured 40 s before
it gave up on a refused connection, 18 s on an unrouted address.  Here the
local cache is tried first; only when the model is not there is the hub probed,
with a few seconds' deadline, and an unreachable hub is one clear error that
says how to work offline.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

Loaded = TypeVar("Loaded")

PROBE_TIMEOUT_S = 3.0


class HubUnreachableError(OSError):
    """A model is neither cached nor downloadable; the message says what to do."""


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_problem(timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the hub cannot be reached now (None: it answers HTTP, with any status).
    Name resolution can hang well past any socket timeout, so the whole probe
    runs in a helper thread that is abandoned at the deadline."""
    endpoint = hub_endpoint()
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout_s).close()
            outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)  # it answered
        except (OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            outcome.append(f"{endpoint}: {getattr(reason, 'strerror', None) or reason}")

    worker = threading.Thread(target=probe, name="hub-probe", daemon=True)
    worker.start()
    worker.join(timeout_s + 0.5)
    return outcome[0] if outcome else f"{endpoint}: no answer within {timeout_s:g} s"


def load_cached_or_online(name: str, load: Callable[[bool], Loaded], what: str = "model") -> Loaded:
    """`load(local_files_only)` from the cache (or a local folder), else from
    the hub if it answers; HubUnreachableError at once otherwise."""
    try:
        return load(True)
    except OSError:
        if Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
            raise  # a local folder: its own error says what is wrong with it
        if hub_offline():
            raise HubUnreachableError(
                f"{what} {name} is not in the local cache and HF_HUB_OFFLINE is set: download it once "
                "with network access (unset HF_HUB_OFFLINE), or point to a local copy"
            ) from None
        problem = hub_problem()
        if problem is not None:
            raise HubUnreachableError(
                f"{what} {name} is not in the local cache and the Hugging Face hub cannot be reached ({problem}); "
                "to work offline, download it once with network access or point to a local copy, and set "
                "HF_HUB_OFFLINE=1 so nothing waits on the network"
            ) from None
    return load(False)
