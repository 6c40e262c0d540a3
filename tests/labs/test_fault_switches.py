"""The fault switches labs use, on a real 4-validator TBFT network: stop, partition, byzantine."""

from __future__ import annotations

import time

import pytest

from .netharness import Load, Net

FAST = {
    "timeout_propose": 1.5,
    "timeout_prevote": 0.5,
    "timeout_precommit": 0.5,
    "empty_block_interval": 0.3,
}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    n = Net(tmp_path_factory.mktemp("faults") / "chain", nodes=4, consensus="tbft", params=FAST)
    yield n
    n.stop()


def test_stop_and_resume_a_validator(net: Net) -> None:
    net.wait_height(2)
    assert net.call(3, "minichain_stopValidator") is True
    time.sleep(0.5)
    stopped_at = net.height(3)
    top = max(net.heights([0, 1, 2]).values())
    net.wait_height(top + 4, nodes=[0, 1, 2])
    assert net.height(3) <= stopped_at + 1, "a stopped validator kept committing"
    assert net.call(3, "minichain_status")["halted"] is True
    net.call(3, "minichain_resumeValidator")
    net.wait_height(top + 4, nodes=[3], timeout=60)
    net.assert_same_chain([0, 1, 2, 3], min(net.heights().values()))


def test_partition_then_heal(net: Net) -> None:
    ids = [n.id for n in net.cfg.nodes]
    # Cut node 0 off from everyone, on both sides of each link.
    net.call(0, "minichain_partition", [ids[1:]])
    for i in (1, 2, 3):
        net.call(i, "minichain_partition", [[ids[0]]])
    time.sleep(0.5)
    cut_at = net.height(0)
    top = max(net.heights([1, 2, 3]).values())
    net.wait_height(top + 3, nodes=[1, 2, 3])
    assert net.height(0) <= cut_at + 1
    for i in range(4):
        net.call(i, "minichain_heal")
    net.wait_height(top + 3, nodes=[0], timeout=60)
    net.assert_same_chain([0, 1, 2, 3], min(net.heights().values()))


@pytest.mark.parametrize("mode", ["equivocate", "bad_votes", "silent"])
def test_one_byzantine_validator_cannot_fork_or_stop_the_chain(net: Net, mode: str) -> None:
    assert net.call(2, "minichain_setByzantine", [mode]) == mode
    try:
        with Load(net, rate=15, account=5):
            top = max(net.heights().values())
            net.wait_height(top + 4, nodes=[0, 1, 3], timeout=90)
        honest = [0, 1, 3]
        net.assert_same_chain(honest, min(net.heights(honest).values()))
    finally:
        net.call(2, "minichain_setByzantine", [None])
    net.wait_height(max(net.heights().values()) + 1, nodes=[0, 1, 2, 3], timeout=60)
    net.assert_same_chain([0, 1, 2, 3], min(net.heights().values()))


def test_bad_switch_arguments_are_invalid_params(net: Net) -> None:
    from labs.minichain.jsonrpc import RpcReplyError, call

    for method, params in (
        ("minichain_setByzantine", ["lying"]),
        ("minichain_partition", ["not-a-list"]),
        ("minichain_partition", [["0xunknown"]]),
    ):
        with pytest.raises(RpcReplyError) as caught:
            call(net.url(0), method, params)
        assert caught.value.code == -32602, caught.value.error
        assert str(caught.value)
