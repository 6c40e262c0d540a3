"""The real academy app served on a loopback port from a thread, for tests that drive it over HTTP
(a browser needs a real server; the TestClient has none)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from academy.api.deps import AcademyState
from academy.app import create_app
from academy.db import upgrade
from academy.settings import Settings
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labs.minichain.ports import free_port
from labs.minichain.waiting import wait_until


def start(app: FastAPI, port: int) -> Callable[[], None]:
    """Serve ``app`` on 127.0.0.1:``port`` until the returned function is called."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, interval=0.05, message="academy did not start")

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return stop


@dataclass(frozen=True)
class Served:
    """The app being served, where: ``origin`` is ``http://127.0.0.1:PORT``, ``url`` that plus
    the settings' ``base_path``."""

    app: FastAPI
    origin: str
    url: str

    @property
    def engine(self) -> Any:
        return self.app.state.academy.engine


def academy_state(client: TestClient) -> AcademyState:
    """What the academy app behind a TestClient holds: its settings, engine and workers."""
    app = client.app
    assert isinstance(app, FastAPI)
    return app.state.academy


@contextmanager
def serve(settings: Settings, port: int | None = None) -> Iterator[Served]:
    """Migrate ``settings``' database, build the app and serve it on ``port`` (a free loopback
    port if none is given; pass one when the settings must name it, e.g. ``public_url``) until
    the block ends."""
    upgrade(settings)
    app = create_app(settings)
    if port is None:
        port = free_port()
    stop = start(app, port)
    origin = f"http://127.0.0.1:{port}"
    try:
        yield Served(app, origin, origin + settings.base_path)
    finally:
        stop()
