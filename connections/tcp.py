"""Listening sockets shared by the receiver and the sender."""

from __future__ import annotations

import errno
import logging
import socket

from utils.net import is_loopback

logger = logging.getLogger(__name__)

ACCEPT_POLL_S = 0.2
# Connections the kernel completes and queues before we accept them.  With a
# backlog of 1, a client that returns while the queue still holds a connection
# (its own last one, not yet accepted because the accepting thread waited a
# millisecond for the GIL) has its SYN dropped and waits for TCP's retransmit
# (1 s, then 3 s): 1,000 reconnects took 0.5 s each on average.  The system's
# maximum costs nothing and lets bursts queue; the newest still wins.
LISTEN_BACKLOG = socket.SOMAXCONN


class PortUnavailableError(OSError):
    """The port cannot be listened on; the message names it and says what to do."""


def listen(
    host: str,
    port: int,
    role: str,
    flag: str = "",
    send_buffer_bytes: int | None = None,
    accept_timeout_s: float | None = ACCEPT_POLL_S,
    exposure: str = "anyone who can reach it can talk to the assistant",
) -> socket.socket:
    """Bind and listen; warn when the port is reachable from other machines,
    saying who may use it then (`exposure`: a keyed server lets in only its
    key's holders).

    A port already in use (most often another s2s server), a host name that
    does not resolve, an address this machine does not have, or a port not
    allowed: one PortUnavailableError naming the address, the cause, and
    `flag`, the option to change it.  `send_buffer_bytes` caps the send
    buffer that accepted connections inherit.
    """
    if not is_loopback(host):
        logger.warning("%s binds %s:%d: the port is open to other machines; %s", role, host, port, exposure)
    server = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer_bytes is not None:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
    try:
        server.bind((host, port))
    except OSError as error:
        server.close()
        raise PortUnavailableError(bind_problem(error, host, port, role, flag)) from None
    server.listen(LISTEN_BACKLOG)
    server.settimeout(accept_timeout_s)
    logger.info("%s listening on %s:%d", role, host, server.getsockname()[1])  # port 0: the one chosen
    return server


def bind_problem(error: OSError, host: str, port: int, role: str, flag: str = "") -> str:
    """One line saying why `host:port` cannot be listened on, by its cause."""
    where = f"{role} cannot listen on {host}:{port}"
    if isinstance(error, socket.gaierror):
        return f"{where}: the host name {host!r} does not resolve ({error.strerror or error}); check the address"
    if error.errno == errno.EADDRINUSE:
        change = f" (choose another with {flag})" if flag else ""
        return f"{where}: the port is already in use; is another s2s server running?{change}"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"{where}: {host} is not an address of this machine"
    if error.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need privileges)"
    return f"{where}: {error.strerror or error}"
