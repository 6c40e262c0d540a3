"""One pooled HTTP client per process for JSON-RPC calls.

``httpx.post`` builds a new client per call, and each new client loads the system CA bundle:
about 45 ms of CPU here, more than the call itself. Chains are polled many times a second (tests,
lab cells, the ledger), so a shared client with keep-alive is kept instead. It is made again
after a fork (the grading sandbox forks from a parent that imported this module), so no two
processes share its connections.
"""

from __future__ import annotations

import os
import threading

import httpx

_lock = threading.Lock()
_client: httpx.Client | None = None
_pid = 0


def client() -> httpx.Client:
    """This process's shared client (thread-safe; give each request its own ``timeout``)."""
    global _client, _pid
    if _client is None or _pid != os.getpid():
        with _lock:
            if _client is None or _pid != os.getpid():
                _client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=32))
                _pid = os.getpid()
    return _client
