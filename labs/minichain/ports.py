"""Free TCP ports on this machine, for validators, hubs and test servers started side by side.

Stdlib only, so the node image and every layer above it can use it.
"""

from __future__ import annotations

import socket


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the OS says are free right now, all different (held together while picked).

    Another process may take one before the caller binds it; callers that cannot retry should
    bind port 0 themselves and read the port back.
    """
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(host: str = "127.0.0.1") -> int:
    """One port the OS says is free right now (see :func:`free_ports`)."""
    return free_ports(1, host)[0]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``port`` could be bound on ``host`` now (a port in TIME_WAIT counts as free)."""
    if port <= 0:
        return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
