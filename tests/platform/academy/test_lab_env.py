"""The lab-chain endpoint's answers for what can go wrong, and how ``labs.client`` takes them.

academy on a loopback port with the small demo course (its labs need no chain, so nothing starts
here; tests/courses/test_lab_chains.py starts real ones): a lab not released to the learner, a
lab that does not exist, a token without the ``learn`` scope, a broken ``lab.toml``; and a
notebook in a lab folder, beside academy, that follows what academy says over the server's
``ACADEMY_RPC_URL``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from academy.app import create_app
from academy.db import session_scope
from academy.services.identity import ensure_user, issue_token
from sqlalchemy.engine import Engine

import labs.client as client
from labs.minichain.waiting import wait_until
from tests.platform import appserver
from tests.platform.appserver import free_port

from .conftest import SettingsFor, World, build_world

#: the served fixture: a world, academy's URL (served on a port) and its engine
ServedWorld = tuple[World, str, Engine]


@pytest.fixture
def served(settings_for: SettingsFor) -> Iterator[ServedWorld]:
    settings = settings_for("sqlite", grade_workers=0, credentials_auto_seconds=0)
    app = create_app(settings)
    port = free_port()
    stop = appserver.start(app, port)
    world = build_world(settings, None, engine=app.state.academy.engine)
    try:
        yield world, f"http://127.0.0.1:{port}/services/academy", app.state.academy.engine
    finally:
        stop()


def post(url: str, path: str, token: str) -> httpx.Response:
    return httpx.post(f"{url}/api{path}", headers={"Authorization": f"Bearer {token}"})


def test_answers_say_what_to_do(served: ServedWorld) -> None:
    world, url, engine = served
    learner = world.tokens["learner_a"]
    r = post(url, "/me/labs/demo-hashing/sha/env", learner)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "none" and body["validators"] == 0 and body["environment"] == {}
    r = post(url, "/me/labs/demo-hashing/second/env", learner)
    assert r.status_code == 404 and "not released to you" in r.json()["detail"]
    r = post(url, "/me/labs/demo-hashing/nope/env", learner)
    assert r.status_code == 404 and "(~/<course>/<lab>/)" in r.json()["detail"]
    with session_scope(engine) as session:
        user, _ = ensure_user(session, "learner-a")
        read_only = issue_token(session, user, ["read"])[1]
    r = post(url, "/me/labs/demo-hashing/sha/env", read_only)
    assert r.status_code == 403 and "'learn' scope" in r.json()["detail"]
    # a lab.toml that cannot start: one line for the learner, who passes it on
    lab_toml = world.settings.courses_dir / "demo-hashing" / "source" / "second" / "lab.toml"
    lab_toml.write_text('[lab]\nid = "second"\n[chain]\nvalidators = 2\nconsensus = "solo"\n')
    r = post(url, "/me/labs/demo-hashing/second/env", world.tokens["instructor_a"])
    assert r.status_code == 409, r.text
    assert (
        "exactly one validator" in r.json()["detail"]
        and "tell your instructor" in r.json()["detail"]
    )


def _lab_folder(tmp_path: Path, course: str, lab: str) -> Path:
    folder = tmp_path / "home" / course / lab
    folder.mkdir(parents=True)
    (folder / "lab.toml").write_text(f'[lab]\nid = "{lab}"\n')
    return folder


def test_a_notebook_follows_its_lab_and_falls_back_to_the_server_chain(
    served: ServedWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, url, _engine = served
    monkeypatch.setattr(client, "_labs", {})
    monkeypatch.setenv("ACADEMY_URL", url)
    monkeypatch.setenv("ACADEMY_TOKEN", world.tokens["learner_a"])
    monkeypatch.setenv("ACADEMY_RPC_URL", "http://127.0.0.1:9")  # the server's own chain
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("ACADEMY_LAB", raising=False)

    # a released lab that needs no chain: academy's answer wins over the server's chain
    monkeypatch.chdir(_lab_folder(tmp_path, "demo-hashing", "sha"))
    assert client.notebook_lab() == "demo-hashing/sha"
    assert not client.live()
    assert client.connect().eth.chain_id == client.LOCAL_CHAIN_ID

    # a folder academy does not know as this learner's lab: the server's chain, as before
    monkeypatch.chdir(_lab_folder(tmp_path, "demo-hashing", "second"))
    assert client.live() and client.lab_env()["ACADEMY_RPC_URL"] == "http://127.0.0.1:9"

    # outside any lab folder: the lab Fetch wrote into the notebook, ACADEMY_LAB (the server's
    # lab), or else the server's chain
    monkeypatch.chdir(tmp_path)
    assert client.notebook_lab() is None
    moved = tmp_path / "moved.ipynb"
    moved.write_text('{"metadata": {"academy": {"course": "demo-hashing", "lab": "sha"}}}')
    monkeypatch.setenv("JPY_SESSION_NAME", str(moved))
    assert client.notebook_lab() == "demo-hashing/sha"
    monkeypatch.delenv("JPY_SESSION_NAME")
    monkeypatch.setenv("ACADEMY_LAB", "demo-hashing/sha")
    assert client.notebook_lab() == "demo-hashing/sha" and not client.live()
    client.use_lab("demo-hashing/second")
    try:
        assert client.notebook_lab() == "demo-hashing/second"
    finally:
        client.use_lab(None)
    with pytest.raises(ValueError, match="course/lab"):
        client.use_lab("sha")

    # academy away: one clear line, not a silent switch to another chain
    monkeypatch.setattr(client, "_labs", {})
    monkeypatch.setenv("ACADEMY_URL", f"http://127.0.0.1:{free_port()}/services/academy")
    with pytest.raises(client.LiveChainRequired, match="did not answer"):
        client.live()
    # the grading sandbox: no academy, no chain variables at all
    for var in ("ACADEMY_URL", "ACADEMY_TOKEN", "ACADEMY_RPC_URL", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    assert not client.live()


def test_lab_chains_take_the_hubs_sandbox_config(tmp_path: Path) -> None:
    """``ACADEMY_SANDBOX_CONFIG`` is the traitlets file the hub loads: academy's lab chains and
    the explorer use the backend, folder and explorer links it sets; without it, local processes
    in ``STATE_DIR/sandbox``."""
    from academy.services.labchains import sandbox_manager
    from academy.settings import Settings

    plain = sandbox_manager(Settings(state_dir=tmp_path / "state"))
    assert plain.state_dir == str(tmp_path / "state" / "sandbox")
    assert plain.backend.name == "process"
    assert plain.explorer_url_template == "/services/academy/explorer/{env_id}"
    config = tmp_path / "sandbox_config.py"
    config.write_text(
        "c = get_config()\n"
        f"c.SandboxManager.state_dir = {str(tmp_path / 'chains')!r}\n"
        "c.SandboxManager.explorer_url_template = 'https://academy.example/explorer/{env_id}'\n"
        "c.ProcessBackend.start_timeout = 7.5\n"
    )
    configured = sandbox_manager(Settings(state_dir=tmp_path / "state", sandbox_config=config))
    assert configured.state_dir == str(tmp_path / "chains")
    assert configured.explorer_url_template.startswith("https://academy.example/")
    assert configured.backend.start_timeout == 7.5


def test_idle_lab_chains_are_stopped_and_come_back(tmp_path: Path) -> None:
    """The spawn's chain and academy's are one per learner and lab; academy's cull stops a chain nobody used for ``ACADEMY_LAB_IDLE_SECONDS`` (its state kept:
    the balance a learner moved is still there when the next ensure starts it again)."""
    from academy.hub.labchains import sandbox_chains
    from academy.services.labchains import LabChains
    from academy.settings import Settings

    lab = tmp_path / "course" / "source" / "solo" / "lab.toml"
    lab.parent.mkdir(parents=True)
    lab.write_text('[lab]\nid = "solo"\n[chain]\nvalidators = 1\nconsensus = "solo"\n')
    chains = LabChains(Settings(state_dir=tmp_path / "state", lab_idle_seconds=2))
    try:
        # the chain the hub starts at spawn is the lab's chain academy hands out: one per lab
        spawn = asyncio.run(sandbox_chains(lab, tmp_path / "state" / "sandbox")("ada"))
        assert spawn["ACADEMY_LAB"] == "course/solo", "labs.client finds the server's lab by name"
        env = chains.ensure("ada", "course", "solo", lab).env
        assert env is not None and env.status == "running"
        assert env.rpc_url == spawn["ACADEMY_RPC_URL"]
        height = client.connect(env.rpc_url).eth.block_number
        chains.start_culler()
        wait_until(
            lambda: chains.manager.status("ada", "solo").status != "running",
            30,
            interval=0.5,
            message="the idle chain was not stopped",
        )
        chains.close()  # no second cull while we look at it again
        back = chains.ensure("ada", "course", "solo", lab).env
        assert back is not None and back.status == "running" and back.env_id == env.env_id
        assert client.connect(back.rpc_url).eth.block_number >= height, "state was kept"
    finally:
        chains.close()
        chains.manager.destroy("ada", "solo")
        chains.manager.close()  # and its chain zygote


def test_a_learners_server_gets_an_sdk_client_for_its_own_chain(tmp_path: Path) -> None:
    """The spawn hands the learner's server ``ACADEMY_CHAINMAKER_SDK_CONFIG``: a copy in their own
    folder, owned by the folder's owner (the jailed server's user), holding the orgs' users and CA
    certificates but no node or CA key; the official SDK then talks to the learner's real chain
    from it. The chain's own keys are root's alone, so the copy is what makes this work in a jail."""
    import os
    import subprocess
    import sys
    from types import SimpleNamespace

    from academy.hub.labchains import sandbox_chains
    from academy.hub.spawner import AcademySpawner
    from academy.services.labchains import LabChains
    from academy.settings import Settings

    from labs.sandbox import SandboxManager

    lab = tmp_path / "course" / "source" / "cm" / "lab.toml"
    lab.parent.mkdir(parents=True)
    lab.write_text('[lab]\nid = "cm"\n[chain]\nvalidators = 1\nconsensus = "solo"\n')
    state = tmp_path / "state" / "sandbox"
    home = tmp_path / "users" / "ada"
    home.mkdir(parents=True)
    learner_uid = 200_007  # what the jail makes of hub user 7
    if os.geteuid() == 0:
        os.chown(home, learner_uid, learner_uid)
    spawner = AcademySpawner(
        user=SimpleNamespace(name="ada", id=7, url="/user/ada/", escaped_name="ada", server=None),
        home_dir_template=str(tmp_path / "users" / "{username}"),
        lab_env=sandbox_chains(lab, state),
    )
    manager = SandboxManager(state_dir=str(state))
    try:
        env = asyncio.run(spawner._lab_chain())
        handed = Path(env["ACADEMY_CHAINMAKER_SDK_CONFIG"])
        chain_config = manager.status("ada", "cm").sdk_config
        assert chain_config is not None and Path(chain_config).is_file()
        assert handed.is_relative_to(home) and handed.is_file(), handed
        copied = sorted(p.relative_to(handed.parent).as_posix() for p in handed.parent.rglob("*"))
        assert not [p for p in copied if "/node/" in p or p.endswith("ca.key")], copied
        org = "crypto-config/wx-org1.chainmaker.org"
        assert f"{org}/user/admin1/admin1.sign.key" in copied
        assert f"{org}/ca/ca.crt" in copied
        if os.geteuid() == 0:
            owners = {p.stat().st_uid for p in handed.parent.rglob("*")} | {
                handed.parent.stat().st_uid
            }
            assert owners == {learner_uid}
            key = handed.parent / org / "user" / "client1" / "client1.sign.key"
            original = Path(chain_config).parents[1] / org / "user" / "client1" / "client1.sign.key"
            assert _opens_as(learner_uid, key), "the learner's user cannot read its copy"
            assert not _opens_as(learner_uid, original), "the chain's own keys are not theirs"

        # the notebook: labs.client reads the variable and the official SDK reaches the chain
        script = (
            "import labs.client as c\n"
            "cc = c.chainmaker_client()\n"
            "admin = c.chainmaker_client(user='admin1')\n"
            "print(cc.get_current_block_height(), admin.get_chainmaker_server_version())\n"
        )
        ran = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr[-2000:]
        height, version = ran.stdout.split()
        assert int(height) >= 0 and version

        # academy hands a lab folder's notebook the same: a copy in the learner's folder
        chains = LabChains(
            Settings(
                state_dir=tmp_path / "state",
                learner_home_template=str(tmp_path / "users" / "{username}"),
            )
        )
        try:
            served = chains.ensure("ada", "course", "cm", lab).env
            assert served is not None
            again = served.environment()["ACADEMY_CHAINMAKER_SDK_CONFIG"]
            assert again == str(handed), "academy's answer names the learner's own copy"
        finally:
            chains.close()
            chains.manager.close()
    finally:
        manager.destroy("ada", "cm")
        manager.close()


def _opens_as(uid: int, path: Path) -> bool:
    """Whether user ``uid`` can open ``path`` for reading, its folder given as the jail gives it
    (a bind mount: the folders above it are not in the way)."""
    import os

    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    pid = os.fork()
    if pid == 0:  # the child only makes system calls, then leaves
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.close(os.open(path.name, os.O_RDONLY, dir_fd=folder))
            os._exit(0)
        except OSError:
            os._exit(1)
    os.close(folder)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
