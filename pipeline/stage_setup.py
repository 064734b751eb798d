"""Building a handler: its setup() loads packages and models, and may fail.

Handlers import their optional packages inside `setup()`, so a missing
package, a wrong model name or an unusable device only shows when the
handler is built.  `set_up_handler` turns each of those into one line that
names the backend and how to install it, instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from models.packaged import ModelNotInstalledError
from utils.signals import stop_if_ctrl_c_requested

# What a handler's setup() raises when its package, model or device cannot be
# used; anything else is a bug and keeps its traceback.
SETUP_ERRORS = (ImportError, ValueError, RuntimeError, OSError)

Handler = TypeVar("Handler")


class BackendUnavailableError(RuntimeError):
    """A chosen backend cannot be used (package missing, model or device unusable)."""


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def set_up_handler(what: str, install: str | None, build: Callable[[], Handler]) -> Handler:
    """Call `build` (a handler's construction); a setup failure becomes a
    BackendUnavailableError naming `what` (e.g. "--tts chatTTS") and `install`.
    A Ctrl-C that came while it loaded stops here, even when its
    KeyboardInterrupt was lost in a C callback (llama.cpp logs through one)."""
    try:
        handler = build()
    except ModelNotInstalledError:
        raise  # already says which package holds the model
    except ImportError as error:
        message = one_line(error)
        hint = "" if not install or install in message else f"; install: {install}"
        raise BackendUnavailableError(f"{what} cannot be imported ({message}){hint}") from None
    except SETUP_ERRORS as error:
        message = one_line(error)
        hint = "" if not install or install in message else f" (if a package is missing or broken: {install})"
        raise BackendUnavailableError(f"{what} failed to start: {message}{hint}") from None
    stop_if_ctrl_c_requested()
    return handler
