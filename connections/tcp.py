"""Listening sockets shared by the receiver and the sender."""

from __future__ import annotations

import ipaddress
import logging
import socket

logger = logging.getLogger(__name__)

ACCEPT_POLL_S = 0.2


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int, role: str) -> socket.socket:
    """Bind and listen; warn when the port is reachable from other machines."""
    if not is_loopback(host):
        logger.warning(
            "%s binds %s:%d: the port is open to other machines; anyone who can reach it can talk to the assistant",
            role,
            host,
            port,
        )
    server = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(1)
    server.settimeout(ACCEPT_POLL_S)
    logger.info("%s listening on %s:%d", role, host, port)
    return server
