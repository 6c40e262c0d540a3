"""A real 4-validator TBFT network on loopback: kill -9, restarts, and no forks."""

from __future__ import annotations

import time

import pytest

from .netharness import Load, Net

FAST = {
    "timeout_propose": 1.5,
    "timeout_prevote": 0.5,
    "timeout_precommit": 0.5,
    "empty_block_interval": 0.5,
}


@pytest.fixture
def net(tmp_path):
    n = Net(tmp_path / "chain", nodes=4, consensus="tbft", params=FAST)
    yield n
    n.stop()


def test_kill_one_commits_go_on_then_it_catches_up(net: Net) -> None:
    net.wait_height(3)
    with Load(net, rate=25) as load:
        time.sleep(2)
        net.kill(3)
        before = max(net.heights([0, 1, 2]).values())
        hs = net.wait_height(before + 5, nodes=[0, 1, 2], timeout=60)
        net.start(3)
        top = min(hs.values())
        net.wait_height(top + 3, nodes=[0, 1, 2, 3], timeout=90)
    assert load.accepted, f"no transaction was accepted: {load.errors[:3]}"
    upto = min(net.heights().values())
    net.assert_same_chain([0, 1, 2, 3], upto)
    # The transfers really landed: every accepted transaction of the load that committed has a receipt.
    receipts = [net.call(0, "eth_getTransactionReceipt", [h]) for h in load.accepted[:20]]
    assert sum(1 for r in receipts if r and r["status"] == "0x1") >= 10


def test_two_of_four_down_halts_without_fork_and_resumes(net: Net) -> None:
    net.wait_height(2)
    with Load(net, rate=10):
        net.kill(2)
        net.kill(3)
        time.sleep(1.0)  # blocks already in flight may still land
        stuck = net.heights([0, 1])
        time.sleep(5.0)
        assert net.heights([0, 1]) == stuck, "two of four validators must not commit"
        net.start(3)
        net.wait_height(max(stuck.values()) + 3, nodes=[0, 1, 3], timeout=90)
    upto = min(net.heights([0, 1, 3]).values())
    net.assert_same_chain([0, 1, 3], upto)
