"""The learner's jail (academy.hub.jail) around a plain command: what it sees and reaches.

The same jail the hub puts a learner's JupyterLab in (``tests/e2e/test_learner_isolation.py``
attacks it from a notebook cell); here a shell inside reports on itself, in about a second.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from academy.hub.jail import Jail, runtime_folders, why_unavailable

from labs.minichain.ports import free_port
from labs.minichain.waiting import wait_until

pytestmark = pytest.mark.skipif(bool(why_unavailable()), reason=why_unavailable() or "-")

REPORT = """
import json, os, socket, sys
def reach(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        return "reached"
    except OSError as exc:
        return "refused: " + type(exc).__name__
def read(path):
    try:
        return open(path).read()
    except OSError as exc:
        return "refused: " + type(exc).__name__
status = dict(l.split(":\\t", 1) for l in open("/proc/self/status").read().splitlines() if ":\\t" in l)
print(json.dumps({
    "uid": os.getuid(),
    "caps": status["CapEff"].strip(),
    "no_new_privs": status["NoNewPrivs"].strip(),
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "secret": read(sys.argv[1]),
    "own": read(sys.argv[2]),
    "forwarded": reach(int(sys.argv[3])),
    "not_forwarded": reach(int(sys.argv[4])),
    "tmp": os.listdir("/tmp"),
}), flush=True)
open(sys.argv[2] + ".new", "w").write("written inside")
"""


@pytest.fixture
def web() -> Iterator[int]:
    """A server on the machine's loopback (stands for the hub, or a chain)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def _jailed(spec: Jail, *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "academy.hub.jail", spec.to_json(), "--", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )


def test_a_jailed_command_sees_only_itself_and_reaches_only_what_is_forwarded(
    tmp_path: Path, web: int
) -> None:
    state = tmp_path / "state"
    home = state / "users" / "ada"
    home.mkdir(parents=True)
    (home / "notes.txt").write_text("ada's own")
    secret = state / "secrets.json"
    secret.write_text('{"service_token": "aca_x"}')
    other = web + 1 if web < 65535 else web - 1  # nothing forwarded there, whatever listens
    spec = Jail(home=str(home), uid=200_777, port=free_port(), forward=[[web, "127.0.0.1"]])
    spec.hide = [str(state)]
    proc = _jailed(
        spec,
        sys.executable,
        "-c",
        REPORT,
        str(secret),
        str(home / "notes.txt"),
        str(web),
        str(other),
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    found = json.loads(out.strip().splitlines()[-1])
    assert found["uid"] == 200_777
    assert int(found["caps"], 16) == 0 and found["no_new_privs"] == "1"
    assert len(found["pids"]) <= 3, found["pids"]  # bubblewrap's init, its sleeper, ourselves
    assert found["secret"].startswith("refused"), found["secret"]
    assert found["own"] == "ada's own"
    assert found["forwarded"] == "reached"
    assert found["not_forwarded"].startswith("refused")
    # /tmp is empty but for the way down to the learner's folder and to what the server runs
    # (the checkout itself may lie under /tmp: its code and venv are put back, read-only)
    shown = [home, *map(Path, runtime_folders())]
    assert all(any(p.is_relative_to(f"/tmp/{t}") for p in shown) for t in found["tmp"]), found
    assert (home / "notes.txt.new").read_text() == "written inside"
    assert (home / "notes.txt.new").stat().st_uid == 200_777


def test_the_proxy_reaches_a_jailed_server_through_the_relay(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "index.html").write_text("served from inside the jail")
    port = free_port()
    spec = Jail(home=str(home), uid=200_778, port=port)
    proc = _jailed(spec, sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1")
    try:

        def answers() -> str | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/index.html", timeout=5).text
            except httpx.HTTPError:
                assert proc.poll() is None, proc.communicate()[1]
                return None

        assert wait_until(answers, 60, interval=0.1) == "served from inside the jail"
    finally:
        proc.terminate()  # the relay passes it on to the server
        assert proc.wait(30) is not None
