"""What a learner's code can reach from a notebook cell in the embedded platform.

Learner A runs cells in their own kernel (over the server's websocket, as JupyterLab does) while
learner B's server and a kernel of B's run next door. A's cell tries what a curious or hostile
learner would: every process's environment (B's tokens and chain keys, the hub's and academy's
tokens), the hub's secrets and database files, academy's PostgreSQL database, and B's lab chain.
All of that must be refused, while A's own chain, academy's API and fetch/submit keep working.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.e2e.hubharness import HubBrowser
from tests.e2e.kernelrun import run_cell
from tests.e2e.test_hub_learner_flow import _environ, _learner_home

pytestmark = pytest.mark.slow

ATTACK = textwrap.dedent(
    """
    import glob, json, os, urllib.request

    def rpc(url):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode()
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as reply:
                return json.load(reply).get("result", "no result")
        except Exception as exc:
            return "refused: " + type(exc).__name__

    environs = []
    for path in glob.glob("/proc/[0-9]*/environ"):
        try:
            with open(path, "rb") as fh:
                environs.append(fh.read().decode(errors="replace"))
        except OSError:
            pass
    seen = "\\n".join(environs)
    files = {}
    for path in FILES:
        try:
            with open(path, "rb") as fh:
                files[path] = "read %d bytes" % len(fh.read())
        except OSError as exc:
            files[path] = "refused: " + type(exc).__name__
    try:
        import psycopg
        with psycopg.connect(DATABASE, connect_timeout=5) as conn:
            database = "connected to %s" % conn.execute("select current_database()").fetchone()
    except Exception as exc:
        database = "refused: " + type(exc).__name__
    me = urllib.request.Request(
        os.environ["ACADEMY_URL"] + "/api/me",
        headers={"Authorization": "Bearer " + os.environ["ACADEMY_TOKEN"]},
    )
    with urllib.request.urlopen(me, timeout=30) as reply:
        academy = json.load(reply)
    print(json.dumps({
        "secrets_seen": sorted(name for name, value in SECRETS.items() if value in seen),
        "files": files,
        "database": database,
        "other_chain": rpc(OTHER_RPC),
        "own_chain": rpc(os.environ["ACADEMY_RPC_URL"]),
        "academy_user": academy.get("username"),
        "pids_seen": len(environs),
    }))
    """
)


def _kernel_env(platform_hub, learner: HubBrowser) -> dict[str, str]:
    """A running kernel's environment (it stays up: its variables are what A hunts for)."""
    started = learner.server("POST", "api/kernels", json={"name": "python3"})
    assert started.status_code == 201, started.text
    kernel_id = started.json()["id"].encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"ipykernel" in cmd and kernel_id in cmd:
                return _environ(int(entry))
    raise AssertionError(f"no kernel process for {learner.name}")


def test_a_learners_cell_reaches_nothing_of_other_learners_or_the_platform(platform_hub) -> None:
    from academy.db import make_engine
    from academy.services.seed import seed_demo

    seed_demo(platform_hub.settings, make_engine(platform_hub.settings), learners=2)
    state = Path(platform_hub.settings.state_dir).resolve()
    hub_dir = state / "hub"
    a, b = HubBrowser(platform_hub), HubBrowser(platform_hub)
    try:
        for who, name in ((a, "learner1"), (b, "learner2")):
            who.login(name, f"{name}-demo")
            who.spawn()
        b_env = _kernel_env(platform_hub, b)
        hub_secrets = json.loads((hub_dir / "secrets.json").read_text())
        secrets = {
            "B's academy token": b_env["ACADEMY_TOKEN"],
            "B's hub token": b_env["JUPYTERHUB_API_TOKEN"],
            "B's chain keys": b_env["ACADEMY_PRIVATE_KEYS"].split(",")[0],
            "academy's service token": hub_secrets["service_token"],
            "the hub's token for academy": hub_secrets["hub_api_token"],
        }
        files = [
            str(hub_dir / "secrets.json"),
            str(hub_dir / "jupyterhub_cookie_secret"),
            str(hub_dir / "jupyterhub.sqlite"),
            str(_learner_home(platform_hub, "learner2") / "notes.txt"),
        ]
        Path(files[-1]).write_text("B's own work")
        assert all(Path(f).is_file() for f in files), files
        database = platform_hub.settings.database_url.replace("+psycopg", "")
        # B's chain answers from where the test runs: only A's cell must be unable to reach it
        other = b_env["ACADEMY_RPC_URL"]
        assert httpx.post(other, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).json()
        code = (
            f"SECRETS = {secrets!r}\nFILES = {files!r}\n"
            f"DATABASE = {database!r}\nOTHER_RPC = {other!r}\n" + ATTACK
        )
        found = json.loads(run_cell(a, code).strip().splitlines()[-1])
    finally:
        a.close()
        b.close()

    assert found["secrets_seen"] == [], found
    assert all(v.startswith("refused") for v in found["files"].values()), found["files"]
    assert found["database"].startswith("refused"), found["database"]
    assert found["other_chain"].startswith("refused"), found["other_chain"]
    # and what A is meant to reach still works from the same cell
    assert found["own_chain"].startswith("0x"), found["own_chain"]
    assert found["academy_user"] == "learner1"
    assert found["pids_seen"] >= 1  # the cell saw its own processes, and only those


FOLLOW = textwrap.dedent(
    """
    import json, time, urllib.request

    def chain_id(url):
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode()
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as reply:
            return json.load(reply)["result"]

    deadline, last = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        try:
            print(json.dumps({"answered": chain_id(NEW_RPC)}))
            break
        except OSError as exc:
            last = exc
            time.sleep(0.5)
    else:
        print(json.dumps({"answered": None, "error": repr(last)}))
    """
)


def test_a_learners_cell_reaches_each_chain_of_theirs_started_after_the_spawn(
    platform_hub, tmp_path: Path
) -> None:
    """A lab opened later (its chain started by academy while the server runs, on ports nobody
    knew at the spawn) is reachable from the learner's kernel without a server restart."""
    from labs.sandbox import LabSpec, SandboxManager

    state = Path(platform_hub.settings.state_dir).resolve()
    sandbox = SandboxManager(state_dir=str(state / "sandbox"))
    toml = tmp_path / "second-lab" / "lab.toml"
    toml.parent.mkdir()
    toml.write_text('[lab]\nid = "second-lab"\n\n[chain]\nvalidators = 1\nconsensus = "solo"\n')
    learner = HubBrowser(platform_hub)
    try:
        learner.login("learner1", "learner1-demo")
        learner.spawn()
        first = sandbox.status(
            "learner1", LabSpec.from_toml(Path(platform_hub.settings.hub_lab)).id
        )
        second = sandbox.ensure("learner1", LabSpec.from_toml(toml)).rpc_urls
        assert second and second != first.rpc_urls, (first.rpc_urls, second)
        found = json.loads(
            run_cell(learner, f"NEW_RPC = {second[0]!r}\n" + FOLLOW).strip().splitlines()[-1]
        )
    finally:
        learner.close()
        sandbox.destroy("learner1", "second-lab")
    assert str(found["answered"]).startswith("0x"), found
