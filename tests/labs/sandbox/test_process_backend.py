"""The embedded backend: real validator processes on loopback, driven through the manager."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labs.sandbox import LabSpec, SandboxManager
from labs.sandbox.process import ProcessBackend

from .helpers import counter_value, make_lab, rpc, signed_transfer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxManager]:
    m = SandboxManager(state_dir=str(tmp_path_factory.mktemp("sandbox")))
    yield m
    for env in m.list():
        m.destroy(env.learner, env.lab_id)
    m.close(drain=True)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> LabSpec:
    return LabSpec.from_toml(make_lab(tmp_path_factory.mktemp("lab") / "counters"))


def test_backend_is_configurable_by_name() -> None:
    assert isinstance(SandboxManager(backend_class="process").backend, ProcessBackend)
    with pytest.raises(Exception, match="nosuch"):
        SandboxManager(backend_class="nosuch.Backend")


def test_ensure_gives_a_preloaded_answering_chain(manager: SandboxManager, spec: LabSpec) -> None:
    env = manager.ensure("alice@example.org", spec)
    assert env.status == "running" and len(env.rpc_urls) == 4
    assert all(u.startswith("http://127.0.0.1:") for u in env.rpc_urls)
    for url in env.rpc_urls:
        assert rpc(url, "web3_clientVersion").startswith("minichain")
    address = env.contracts["Counter"]["address"]
    assert counter_value(env.rpc_urls[2], address) == 7  # preloaded with its constructor arg
    assert env.environment()["ACADEMY_RPC_URLS"] == ",".join(env.rpc_urls)
    again = manager.ensure("alice@example.org", spec)  # idempotent: same chain, nothing redeployed
    assert again.rpc_urls == env.rpc_urls and again.contracts == env.contracts


def test_two_learners_get_their_own_chains(manager: SandboxManager, spec: LabSpec) -> None:
    a = manager.ensure("alice@example.org", spec)
    b = manager.ensure("bob", spec)
    assert a.env_id != b.env_id and not set(a.rpc_urls) & set(b.rpc_urls)
    assert a.accounts[0]["address"] != b.accounts[0]["address"]
    assert {e.learner for e in manager.list()} == {"alice@example.org", "bob"}
    assert [e.learner for e in manager.list("bob")] == ["bob"]


def test_stop_and_start_keeps_contracts_and_balances(
    manager: SandboxManager, spec: LabSpec
) -> None:
    env = manager.ensure("alice@example.org", spec)
    url, sender = env.rpc_urls[0], env.accounts[0]
    receiver = "0x" + "ab" * 20
    tx = signed_transfer(url, sender["private_key"], receiver, 12345)
    deadline = time.monotonic() + 30
    while rpc(url, "eth_getTransactionReceipt", [tx]) is None:
        assert time.monotonic() < deadline, "transfer never committed"
        time.sleep(0.1)
    assert [e.env_id for e in manager.stop("alice@example.org")] == [env.env_id]
    assert manager.status("alice@example.org", "counters").status == "stopped"
    assert manager.status("bob", "counters").status == "running"  # bob's untouched
    back = manager.ensure("alice@example.org", spec)
    url = back.rpc_urls[0]
    assert int(rpc(url, "eth_getBalance", [receiver, "latest"]), 16) == 12345
    assert counter_value(url, back.contracts["Counter"]["address"]) == 7
    assert back.contracts == env.contracts


def test_cull_stops_only_the_idle(manager: SandboxManager, spec: LabSpec) -> None:
    manager.ensure("alice@example.org", spec)
    manager.ensure("bob", spec)
    time.sleep(1.5)
    manager.touch("bob")
    culled = manager.cull(idle_for=1.0)
    assert [e.learner for e in culled] == ["alice@example.org"]
    assert manager.status("alice@example.org", "counters").status == "stopped"
    assert manager.status("bob", "counters").status == "running"
    assert manager.status("carol", "counters").status == "missing"


def test_warm_pool_hands_out_a_running_chain(
    manager: SandboxManager, spec: LabSpec, tmp_path: Path
) -> None:
    pooled = SandboxManager(state_dir=str(tmp_path))
    pooled.backend.pool_size = 1
    try:
        pooled.warm(block=True)
        ready = list((tmp_path / "chains" / "_pool").glob("*/ready"))
        assert len(ready) == 1
        env = pooled.ensure("dora", spec)  # claims the pool chain, then preloads the lab
        assert not ready[0].exists()
        assert (tmp_path / "chains" / env.env_id).is_symlink()
        assert counter_value(env.rpc_urls[1], env.contracts["Counter"]["address"]) == 7
        pooled.stop("dora")
        again = pooled.ensure("dora", spec)  # restarts its own chain, not another pool one
        assert again.contracts == env.contracts
        pooled.destroy("dora", "counters")
        assert not (tmp_path / "chains" / env.env_id).exists()
    finally:
        pooled.backend.pool_size = 0
        pooled.close(drain=True)
