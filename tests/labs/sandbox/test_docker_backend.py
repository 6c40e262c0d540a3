"""The container backend on a real engine (podman's Docker API): isolation, limits, persistence, cull.

Two learners' environments run side by side for the whole module. What could fail, and is checked:
a learner's chain containers reaching the other learner's chain or a server on the host (the same
from a learner's JupyterLab, started by the production hub: test_production_hub.py); the limits not applied or not holding against a fork bomb and a memory hog;
state lost across stop/start and across re-creating the containers; cull stopping a busy learner.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from labs.minichain.waiting import wait_until
from labs.sandbox import LabSpec, SandboxManager
from labs.sandbox.docker_backend import DockerBackend

from .conftest import RUN_LABEL
from .helpers import PROBE, HostServer, counter_value, make_lab, rpc, signed_transfer

pytestmark = pytest.mark.slow

A, B = "ada@example.org", "bo"


@pytest.fixture(scope="module")
def manager(engine: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    m = SandboxManager(state_dir=str(tmp_path_factory.mktemp("sandbox")), backend_class="docker")
    m.backend.base_url = engine["base_url"]
    m.backend.image = engine["image"]
    m.backend.extra_labels = {RUN_LABEL: engine["run"]}
    m.backend.mem_limit = "384m"
    m.backend.pids_limit = 96
    yield m
    for env in m.list():
        m.destroy(env.learner, env.lab_id)
    for learner in (A, B):
        m.backend.remove_network(learner)
    m.close()


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> LabSpec:
    return LabSpec.from_toml(make_lab(tmp_path_factory.mktemp("lab") / "counters"))


@pytest.fixture(scope="module")
def envs(manager: SandboxManager, spec: LabSpec) -> dict[str, Any]:
    # both at once, as a hub spawning two learners would (also exercises the per-env locking)
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda learner: manager.ensure(learner, spec), (A, B))
    return {A: a, B: b}


def _container(manager: SandboxManager, learner: str) -> Any:
    backend = manager.backend
    assert isinstance(backend, DockerBackend)
    (ct,) = backend._containers(manager.status(learner, "counters").env_id)
    return ct


def _ip(ct: Any, network: str) -> str:
    ct.reload()
    return ct.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def _gateway(client: Any, network: str) -> str:
    return client.networks.get(network).attrs["IPAM"]["Config"][0]["Gateway"]


def test_containers_are_locked_down(manager: SandboxManager, envs: dict[str, Any]) -> None:
    ct = _container(manager, A)
    host = ct.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert [c.upper().removeprefix("CAP_") for c in host["CapDrop"] or []] == ["ALL"] or (
        len(host["CapDrop"]) > 10
    )
    assert any("no-new-privileges" in s for s in host["SecurityOpt"] or [])
    assert host["Memory"] == 384 * 2**20 and host["PidsLimit"] == 96
    assert host["NanoCpus"] == 10**9
    assert ct.attrs["Config"]["User"] == "10001:10001"
    uid = ct.exec_run(["id", "-u"]).output.decode().strip()
    assert uid == "10001"
    wrote = ct.exec_run(["sh", "-c", "touch /usr/x 2>&1; echo $?"]).output.decode()
    assert "Read-only file system" in wrote
    net = manager.backend.client.networks.get(envs[A].network)
    assert net.attrs["Internal"] is True
    assert envs[A].network != envs[B].network


def test_isolation_from_inside_a_learners_chain(
    manager: SandboxManager, envs: dict[str, Any]
) -> None:
    """From inside A's validator container (a contract's view, or a break-out of the node); the
    view from A's JupyterLab server is tested with the production hub (test_production_hub.py)."""
    client = manager.backend.client
    a_ct, b_ct = _container(manager, A), _container(manager, B)
    a_net, b_net = envs[A].network, envs[B].network
    b_name, b_ip = b_ct.name, _ip(b_ct, b_net)
    a_name = a_ct.name
    gw_a, gw_b = _gateway(client, a_net), _gateway(client, b_net)
    servers = [HostServer(gw_a), HostServer(gw_b)]
    try:
        targets = [
            (a_name, 8545),  # own chain by the name in the learner's RPC URL
            (a_name, 8548),
            (b_name, 8545),  # the other learner's chain: by name ...
            (b_ip, 8545),  # ... and by address
            (gw_a, servers[0].port),  # a server on the host, in A's network
            (gw_b, servers[1].port),  # and in B's
        ]
        out = a_ct.exec_run(["python3", "-c", PROBE, json.dumps(targets)], user="10001:10001")
        seen = json.loads(out.output)
    finally:
        for s in servers:
            s.close()
    assert seen[f"{a_name}:8545"] == "open" and seen[f"{a_name}:8548"] == "open"
    assert seen[f"{b_name}:8545"] == "no-name"
    assert seen[f"{b_ip}:8545"] != "open"
    assert seen[f"{gw_a}:{servers[0].port}"] != "open"
    assert seen[f"{gw_b}:{servers[1].port}"] != "open"
    assert seen["default_route"] is False
    assert servers[0].accepted == servers[1].accepted == 0


def test_fork_bomb_and_memory_hog_stay_inside(
    manager: SandboxManager, envs: dict[str, Any]
) -> None:
    ct = _container(manager, A)
    bomb = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while n < 10000:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(4); os._exit(0)\n"
        "        n += 1\n"
        "except OSError as exc:\n"
        "    print(n, exc.errno)\n"
    )
    out = ct.exec_run(["python3", "-c", bomb], user="10001:10001").output.decode().split()
    forked, errno = int(out[0]), int(out[1])
    assert forked < 96 and errno == 11  # EAGAIN: the pids limit, not the host's, stopped it
    hog = "x = bytearray(1024 * 2**20)\nx[::4096] = b'1' * len(x[::4096])\nprint('survived')"
    hogged = ct.exec_run(["python3", "-c", hog], user="10001:10001")
    assert hogged.exit_code != 0 and b"survived" not in hogged.output  # killed at 384 MiB
    time.sleep(4.5)  # the bomb's children exit
    ct.reload()
    assert ct.status == "running"
    heights = [n["height"] for n in manager.backend.info(envs[A].env_id)["nodes"]]
    assert all(h is not None for h in heights), heights  # all 4 validators still answer
    assert manager.status(B, "counters").status == "running"


def test_stop_start_and_recreate_keep_contracts_and_balances(
    manager: SandboxManager, envs: dict[str, Any], spec: LabSpec
) -> None:
    env = envs[A]
    net = env.network
    url = f"http://{_ip(_container(manager, A), net)}:8545"  # the host sits on the bridge
    counter = env.contracts["Counter"]["address"]
    receiver = "0x" + "cd" * 20
    key = env.accounts[1]["private_key"]
    tx = signed_transfer(url, key, receiver, 4242)
    _wait_receipt(url, tx)
    assert counter_value(url, counter) == 7
    stopped = manager.stop(A)
    assert [e.env_id for e in stopped] == [env.env_id]
    assert manager.status(A, "counters").status == "stopped"
    assert manager.status(B, "counters").status == "running"
    again = manager.ensure(A, spec)
    url = f"http://{_ip(_container(manager, A), net)}:8545"
    assert int(rpc(url, "eth_getBalance", [receiver, "latest"]), 16) == 4242
    assert again.contracts == env.contracts and counter_value(url, counter) == 7
    # the engine host is rebuilt: containers gone, the volume stays
    backend = manager.backend
    assert isinstance(backend, DockerBackend)
    for ct in backend._containers(env.env_id):
        ct.stop(timeout=5)
        backend._remove(ct)
    again = manager.ensure(A, spec)
    url = f"http://{_ip(_container(manager, A), net)}:8546"
    assert int(rpc(url, "eth_getBalance", [receiver, "latest"]), 16) == 4242
    assert counter_value(url, counter) == 7


def test_cull_stops_only_the_idle(manager: SandboxManager, envs: dict[str, Any]) -> None:
    time.sleep(1.2)
    manager.touch(B)
    culled = manager.cull(idle_for=1.0)
    assert [e.learner for e in culled] == [A]
    assert manager.status(A, "counters").status == "stopped"
    assert manager.status(B, "counters").status == "running"


def _wait_receipt(url: str, tx: str) -> None:
    wait_until(
        lambda: rpc(url, "eth_getTransactionReceipt", [tx]),
        30,
        message="transaction never committed",
    )


def test_pool_hands_a_learner_a_started_chain_on_their_network_only(
    engine: dict[str, str], spec: LabSpec, tmp_path: Path
) -> None:
    """A pool chain waits paused on the pool's own network; a claim moves it to the learner's
    network, resumes it, preloads the lab's contracts, and the pool refills with a chain of its
    own keys. Stop and start keep the claimed chain's state."""
    run = engine["run"]
    m = SandboxManager(state_dir=str(tmp_path / "sandbox"), backend_class="docker")
    b = m.backend
    assert isinstance(b, DockerBackend)
    b.base_url, b.image = engine["base_url"], engine["image"]
    b.extra_labels = {RUN_LABEL: run}
    b.network_prefix = f"ca-{run}-"  # its own pool network, not another run's
    b.mem_limit, b.pool_size = "384m", 1
    try:
        assert b.fill_pool() == 1
        (pooled,) = b._pool_chains()
        assert pooled.status == "paused"
        assert set(pooled.attrs["NetworkSettings"]["Networks"]) == {f"ca-{run}-pool"}
        cy = m.ensure("cy", spec)
        (ct,) = b._containers(cy.env_id)
        assert ct.name == pooled.name and ct.status == "running"
        assert set(ct.attrs["NetworkSettings"]["Networks"]) == {cy.network}
        url = f"http://{_ip(ct, cy.network)}:8545"
        assert counter_value(url, cy.contracts["Counter"]["address"]) == 7  # preloaded
        wait_until(  # refilled in the background
            lambda: [c for c in b._pool_chains() if c.status == "paused"],
            120,
            interval=0.5,
            message="the pool was not refilled",
        )
        dee = m.ensure("dee", spec)
        assert b._containers(dee.env_id)[0].name != ct.name
        mine = {a["address"] for a in cy.accounts}
        assert mine.isdisjoint(a["address"] for a in dee.accounts)  # each chain its own keys
        assert m.stop("cy") and m.status("cy", spec.id).status == "stopped"
        again = m.ensure("cy", spec)
        (ct,) = b._containers(again.env_id)
        assert ct.name == pooled.name and again.contracts == cy.contracts
        url = f"http://{_ip(ct, cy.network)}:8545"
        assert counter_value(url, cy.contracts["Counter"]["address"]) == 7
    finally:
        for env in m.list():
            m.destroy(env.learner, env.lab_id)
        m.close(drain=True)
        for learner in ("cy", "dee"):
            b.remove_network(learner)
