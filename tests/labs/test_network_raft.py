"""A real 3-validator Raft network: kill -9 the leader, a new one takes over, nothing committed is lost."""

from __future__ import annotations

import time

import pytest

from .netharness import Load, Net

ELECTION_TIMEOUT = 1.0


@pytest.fixture
def net(tmp_path):
    n = Net(
        tmp_path / "chain",
        nodes=3,
        consensus="raft",
        params={
            "election_timeout": ELECTION_TIMEOUT,
            "heartbeat_interval": 0.1,
            "empty_block_interval": 0.5,
        },
    )
    yield n
    n.stop()


def _leader(net: Net, nodes: list[int]) -> tuple[str | None, int]:
    """The leader id that the given nodes agree on, and the highest term they report."""
    seen, term = set(), 0
    for i in nodes:
        st = net.call(i, "minichain_consensusState")["state"]
        term = max(term, int(st.get("term", 0)))
        seen.add(st.get("leader"))
    return (seen.pop() if len(seen) == 1 else None), term


def test_leader_killed_new_leader_within_two_election_timeouts(net: Net) -> None:
    net.wait_height(2)
    ids = [n.id for n in net.cfg.nodes]
    with Load(net, rate=20) as load:
        time.sleep(2)
        old_leader, old_term = _leader(net, [0, 1, 2])
        assert old_leader in ids
        leader_index = ids.index(old_leader)
        committed_before = net.height((leader_index + 1) % 3)
        hashes_before = {
            h: net.block_hash((leader_index + 1) % 3, h) for h in range(1, committed_before + 1)
        }
        net.kill(leader_index)
        killed_at = time.monotonic()
        survivors = [i for i in range(3) if i != leader_index]
        while True:
            leader, term = _leader(net, survivors)
            if leader is not None and leader != old_leader and term > old_term:
                break
            assert time.monotonic() - killed_at < 10 * ELECTION_TIMEOUT, "no new leader"
            time.sleep(0.05)
        took = time.monotonic() - killed_at
        net.wait_height(committed_before + 3, nodes=survivors)
        net.start(leader_index)
        net.wait_height(committed_before + 5, nodes=[0, 1, 2], timeout=60)
    assert took <= 2 * ELECTION_TIMEOUT, f"new leader after {took:.2f} s"
    # Nothing committed before the crash was lost or changed, on any node (the old leader included).
    for i in range(3):
        for h, block_hash in hashes_before.items():
            assert net.block_hash(i, h) == block_hash
    net.assert_same_chain([0, 1, 2], min(net.heights().values()))
    assert load.accepted
