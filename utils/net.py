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


def address_to_open(host: str) -> str:
    """The address a person opens for a server bound to `host`: a wildcard
    (0.0.0.0, ::) listens on every address but none opens in a browser, so
    this machine's name stands in for it."""
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname() or "localhost"
    return f"[{host}]" if ":" in host else host
