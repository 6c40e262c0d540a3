"""The real academy app served on a loopback port from a thread, for tests that drive it over HTTP
(a browser needs a real server; the TestClient has none)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI


def start(app: FastAPI, port: int) -> Callable[[], None]:
    """Serve ``app`` on 127.0.0.1:``port`` until the returned function is called."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "academy did not start"
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return stop
