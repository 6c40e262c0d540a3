"""Raft in the deterministic simulator: leader failover, no lost commit, safety under crashes."""

from __future__ import annotations

import random

from labs.minichain.sim import Simulation

ELECTION_TIMEOUT = 1.0
PARAMS = {
    "election_timeout": ELECTION_TIMEOUT,
    "heartbeat_interval": 0.15,
    "empty_block_interval": 0.3,
}


def raft(seed: int, n: int = 3, **options) -> Simulation:
    options.setdefault("delay", (0.001, 0.03))
    return Simulation("raft", n=n, seed=seed, params=PARAMS, keep_trace=True, **options)


def leader_of(s: Simulation, among: list[int]) -> tuple[int | None, int]:
    """The index of the live leader with the highest term among ``among``, and that term."""
    best, term = None, -1
    for i in among:
        engine = s.engine(i)
        if engine is not None:
            st = engine.status()
            if st["role"] == "leader" and st["term"] > term:
                best, term = i, st["term"]
    return best, term


def test_leader_killed_new_leader_within_two_election_timeouts_nothing_lost() -> None:
    for seed in range(30):
        n = 3 if seed % 2 else 5
        s = raft(seed, n=n)
        s.run(until_time=4.0)
        old, old_term = leader_of(s, list(range(n)))
        assert old is not None, f"seed {seed}: no leader after 4 s"
        before = s.run(until_time=4.0)
        committed_before = max(before.hashes, key=len)  # everything committed anywhere so far
        s.crash(old)
        killed_at = s.time
        s.run(until_time=killed_at + 2 * ELECTION_TIMEOUT)
        survivors = [i for i in range(n) if i != old]
        new, new_term = leader_of(s, survivors)
        assert new is not None and new_term > old_term, (
            f"seed {seed}: no new leader within two election timeouts"
        )
        elected = [
            t
            for t, node, event, fields in s.trace
            if event == "raft_leader" and t >= killed_at and fields["term"] == new_term
        ]
        assert elected and elected[0] - killed_at <= 2 * ELECTION_TIMEOUT
        later = s.run(until_time=killed_at + 6.0)
        assert later.safe, later
        for i in survivors:
            chain = later.hashes[i]
            assert len(chain) > len(committed_before), f"seed {seed}: node {i} did not go on"
            assert chain[: len(committed_before)] == committed_before, "a committed block was lost"
        # The old leader comes back and catches up with what was decided without it.
        s.restart(old)
        end = s.run(until_time=killed_at + 10.0)
        assert end.safe, end
        top = min(end.heights[i] for i in survivors)
        assert end.heights[old] >= top - 1, f"old leader did not catch up: {end}"
        common = min(len(end.hashes[old]), len(end.hashes[new]))
        assert end.hashes[old][:common] == end.hashes[new][:common]


def test_random_crashes_and_restarts_keep_raft_safe() -> None:
    for seed in range(80):
        rng = random.Random(seed)
        n = rng.choice([3, 5])
        crashes, restarts = [], []
        for _ in range(rng.randrange(1, 6)):
            victim = rng.randrange(n)
            down = round(rng.uniform(0.5, 12.0), 3)
            crashes.append((down, victim))
            restarts.append((round(down + rng.uniform(0.1, 4.0), 3), victim))
        s = raft(
            seed,
            n=n,
            drop=rng.choice([0.0, 0.02, 0.1]),
            crashes=crashes,
            restarts=restarts,
        )
        mid = s.run(until_time=17.0)  # every crashed node is back by 16 s
        assert mid.safe, mid
        end = s.run(until_time=25.0)
        assert end.safe, end
        assert min(end.heights) > max(mid.heights), f"no progress once all were back: {end}"


def test_minority_partition_cannot_commit_and_rejoins() -> None:
    for seed in range(20):
        s = raft(seed, n=5, partitions=[(3.0, 9.0, [[0, 1], [2, 3, 4]])])
        settled = s.run(until_time=3.5).heights
        split = s.run(until_time=9.0)
        assert max(split.heights[0], split.heights[1]) == max(settled[0], settled[1])
        assert min(split.heights[i] for i in (2, 3, 4)) > max(settled)
        end = s.run(until_time=15.0)
        assert end.safe, end
        assert min(end.heights) >= min(split.heights[i] for i in (2, 3, 4))


def test_raft_messages_and_state_survive_the_real_wire_format() -> None:
    for seed in range(4):
        s = raft(seed, crashes=[(2.0, seed % 3)], restarts=[(4.0, seed % 3)], wire_check=True)
        end = s.run(until_time=10.0)
        assert end.safe, end
        assert min(end.heights) > 5, end
