"""The embedded backend: real validator processes on loopback, driven through the manager."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labs.minichain.jsonrpc import RpcReplyError
from labs.minichain.waiting import wait_until
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
    wait_until(
        lambda: rpc(url, "eth_getTransactionReceipt", [tx]),
        30,
        message="transfer never committed",
    )
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


def test_a_pooled_chain_is_its_claimers_alone_and_the_pool_refills(tmp_path: Path) -> None:
    """Two learners claim the two pre-started chains: each gets a chain of its own whose funded
    keys nobody else was ever handed (every pool chain makes its own at creation), the other's keys
    hold nothing there, a chain once claimed is never handed out again, and the pool fills back up
    in the background. (On this backend every chain listens on loopback; that another learner's
    server cannot even connect is the docker backend's network isolation, tested there.)"""
    spec = LabSpec.from_toml(make_lab(tmp_path / "lab", lab_id="pooled", validators=1))
    pooled = SandboxManager(state_dir=str(tmp_path / "sandbox"))
    pooled.backend.pool_size = 2
    pooled.backend.pool_validators = 1
    pool = tmp_path / "sandbox" / "chains" / "_pool"
    try:
        pooled.warm(block=True)
        first = sorted(p.parent for p in pool.glob("*/ready"))
        assert len(first) == 2
        # unclaimed, a pool chain is paused (memory, no CPU); claimed, it runs
        assert {_state(int((p / "launcher.pid").read_text())) for p in first} == {"T"}
        ann = pooled.ensure("ann", spec)
        ben = pooled.ensure("ben", spec)
        chains = tmp_path / "sandbox" / "chains"
        assert {(chains / e.env_id).resolve() for e in (ann, ben)} == {p.resolve() for p in first}
        assert not set(ann.rpc_urls) & set(ben.rpc_urls)
        ann_keys = {a["address"] for a in ann.accounts}
        assert ann_keys and not ann_keys & {a["address"] for a in ben.accounts}

        url = ann.rpc_urls[0]
        assert _state(int((chains / ann.env_id / "launcher.pid").read_text())) != "T"
        assert int(rpc(url, "eth_getBalance", [ann.accounts[0]["address"], "latest"]), 16) > 0
        assert int(rpc(url, "eth_getBalance", [ben.accounts[0]["address"], "latest"]), 16) == 0
        with pytest.raises(RpcReplyError, match="(?i)fund|balance"):
            signed_transfer(url, ben.accounts[0]["private_key"], ann.accounts[1]["address"], 1)

        again = pooled.ensure("ann", spec)  # ann's own chain, the same keys and contracts
        assert again.rpc_urls == ann.rpc_urls and again.accounts == ann.accounts

        wait_until(
            lambda: len(list(pool.glob("*/ready"))) >= 2,
            120,
            interval=0.2,
            message="the pool was not refilled",
        )
        refilled = {p.parent.resolve() for p in pool.glob("*/ready")}
        assert len(refilled) == 2 and not refilled & {p.resolve() for p in first}
        cara = pooled.ensure("cara", spec)  # the next learner gets a fresh one, not ann's
        assert (chains / cara.env_id).resolve() in refilled
        assert not {a["address"] for a in cara.accounts} & ann_keys
    finally:
        for learner in ("ann", "ben", "cara"):
            pooled.stop(learner)
        pooled.backend.pool_size = 0
        pooled.close(drain=True)


def _state(pid: int) -> str:
    """The process state letter from /proc (T: stopped by a signal)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
