"""Network addresses: which hosts only this machine can reach, and which names resolve."""

from __future__ import annotations

import ipaddress
import socket


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolution_problem(host: str) -> str | None:
    """Why the host name `host` does not resolve, or None (addresses and
    names that resolve).  Asked before the models load, so a mistyped
    --realtime_host is one line at once, not an error a minute later or a
    question about API keys for a machine that does not exist."""
    if not host or host == "localhost":
        return None
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as error:
        return f"the host name {host!r} does not resolve ({error.strerror or error}); check the address"
    return None
