"""Run code in a learner's kernel the way JupyterLab does: over the server's kernel websocket.

What a learner types into a notebook cell runs in that kernel, so an attack written as a cell is
exactly what a learner can do; nothing here reaches around the hub, the proxy or the server.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.e2e.hubharness import HubBrowser


def run_cell(learner: HubBrowser, code: str, timeout: float = 120.0) -> str:
    """Execute ``code`` in a new kernel of the learner's server; return what it printed.

    Raises ``AssertionError`` with the traceback when the cell fails.
    """
    started = learner.server("POST", "api/kernels", json={"name": "python3"})
    assert started.status_code == 201, started.text
    kernel_id = started.json()["id"]
    try:
        return asyncio.run(asyncio.wait_for(_execute(learner, kernel_id, code), timeout))
    finally:
        learner.server("DELETE", f"api/kernels/{kernel_id}")


async def _execute(learner: HubBrowser, kernel_id: str, code: str) -> str:
    from urllib.parse import urlsplit

    from academy.hub.origins import learner_origin
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    # the server lives on the learner's own origin (NAME.localhost:PORT): connect to loopback and
    # name that origin in the Host header, as a browser does, since Python resolves no *.localhost
    origin = urlsplit(learner_origin(learner.run.url, learner.name))
    base = f"ws://127.0.0.1:{origin.port}"
    prefix = f"/user/{learner.name}"
    cookies = "; ".join(
        f"{c.name}={c.value}"
        for c in learner.http.cookies.jar
        if c.path in ("/", "") or c.path.startswith(prefix) or prefix.startswith(c.path)
    )
    session = uuid.uuid4().hex
    url = f"{base}{prefix}/api/kernels/{kernel_id}/channels?session_id={session}"
    conn = await websocket_connect(
        HTTPRequest(url, headers={"Cookie": cookies, "Host": origin.netloc})
    )
    msg_id = uuid.uuid4().hex
    conn.write_message(json.dumps(_request(msg_id, session, code)))
    out: list[str] = []
    error: dict[str, Any] = {}
    try:
        while True:
            raw = await conn.read_message()
            assert raw is not None, "the kernel's websocket closed"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                error = content
            elif kind == "execute_reply":
                break
    finally:
        conn.close()
    assert not error, "\n".join(error.get("traceback", [])) + "".join(out)
    return "".join(out)


def _request(msg_id: str, session: str, code: str) -> dict[str, Any]:
    return {
        "header": {
            "msg_id": msg_id,
            "session": session,
            "username": "",
            "msg_type": "execute_request",
            "version": "5.3",
            "date": datetime.now(UTC).isoformat(),
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }
