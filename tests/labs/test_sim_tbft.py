"""TBFT in the deterministic simulator: safety under byzantine validators, liveness after faults.

Every run is a pure function of its seed and options, so a failure message carries the command
that replays it (``SimResult.replay_command``).
"""

from __future__ import annotations

import hashlib
import random

import pytest

from labs.minichain.consensus.tbft import PRECOMMIT, TBFTEngine, TbftVote
from labs.minichain.sim import Simulation

from .simparams import TBFT_FAST

SEEDS = range(200)


def sim(seed: int, **options) -> Simulation:
    options.setdefault("params", TBFT_FAST)
    options.setdefault("delay", (0.001, 0.08))
    return Simulation("tbft", n=4, seed=seed, **options)


@pytest.mark.parametrize("mode", ["equivocate", "bad_votes", "silent"])
def test_one_byzantine_of_four_never_splits_the_honest_nodes(mode: str) -> None:
    seeds = SEEDS if mode == "equivocate" else range(60)
    for seed in seeds:
        byzantine = seed % 4
        drop = 0.05 if seed % 3 == 0 else 0.0
        result = sim(seed, byzantine={byzantine: mode}, drop=drop).run(until_time=12.0)
        assert result.safe, result
        honest = [result.heights[i] for i in result.honest]
        assert min(honest) >= 3, f"honest nodes stalled: {result}"


def test_equivocating_proposer_really_sends_two_blocks() -> None:
    """The attack is real: honest nodes see two different signed proposals for one round."""
    s = sim(3, byzantine={0: "equivocate"}, keep_trace=True)
    s.run(until_time=6.0)
    blocks: dict[tuple[int, int], set[str]] = {}
    for _, _, event, fields in s.trace:
        if event == "recv" and fields["from"] == 0 and fields["msg"].startswith("TbftProposal("):
            parts = dict(p.split("=") for p in fields["msg"][13:-1].split(", "))
            blocks.setdefault((int(parts["height"]), int(parts["round"])), set()).add(
                parts["block"]
            )
    assert any(len(b) == 2 for b in blocks.values()), blocks


def test_partition_two_two_stops_commits_and_heals() -> None:
    for seed in SEEDS:
        s = sim(seed, partitions=[(2.0, 6.0, [[0, 1], [2, 3]])])
        s.run(until_time=3.0)  # anything in flight at the split has landed by now
        at_split = s.run(until_time=6.0).heights
        mid = s.run(until_time=6.0)
        assert mid.heights == at_split
        end = s.run(until_time=14.0)
        assert end.safe, end
        assert min(end.heights) > max(at_split), (
            f"not every node advanced after the heal (at heal {at_split}): {end}"
        )


def test_partition_heights_frozen_while_split() -> None:
    """Neither half has 3 of 4 votes: no height moves while the network is split."""
    for seed in range(40):
        s = sim(seed, partitions=[(2.0, 8.0, [[0, 1], [2, 3]])])
        settled = s.run(until_time=3.0).heights
        assert s.run(until_time=8.0).heights == settled, f"seed {seed}: a half committed"


def test_crash_one_of_four_commits_go_on() -> None:
    for seed in range(20):
        s = sim(seed, crashes=[(2.0, seed % 4)])
        before = s.run(until_time=2.5).heights
        after = s.run(until_time=15.0)
        assert after.safe, after
        live = [h for i, h in enumerate(after.heights) if i != seed % 4]
        assert min(live) >= max(before) + 3, after


def test_crash_two_of_four_no_commit_and_no_fork() -> None:
    for seed in range(20):
        s = sim(seed, crashes=[(2.0, 1), (2.0, 3)])
        settled = s.run(until_time=3.0).heights
        end = s.run(until_time=15.0)
        assert end.safe, end
        assert end.heights == settled, f"two of four must not commit: {end}"


def test_restart_one_commits_resume_and_it_catches_up() -> None:
    for seed in range(20):
        victim = seed % 4
        s = sim(seed, crashes=[(2.0, victim)], restarts=[(8.0, victim)])
        at_crash = s.run(until_time=2.0).heights[victim]
        end = s.run(until_time=16.0)
        assert end.safe, end
        others = [h for i, h in enumerate(end.heights) if i != victim]
        assert end.heights[victim] > at_crash
        assert end.heights[victim] >= min(others) - 1, f"restarted node did not catch up: {end}"
        mine, peer = end.hashes[victim], end.hashes[(victim + 1) % 4]
        common = min(len(mine), len(peer))
        assert mine[:common] == peer[:common]


def test_two_down_then_one_back_commits_resume() -> None:
    for seed in range(20):
        s = sim(seed, crashes=[(2.0, 2), (2.0, 3)], restarts=[(6.0, 3)])
        stuck = s.run(until_time=6.0).heights
        end = s.run(until_time=16.0)
        assert end.safe, end
        assert min(end.heights[i] for i in (0, 1, 3)) > max(stuck), end


def test_kill_at_any_instant_never_double_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    """kill -9 and restart at random instants: no honest validator ever signs two different votes
    for one (height, round, kind). This is what the write-ahead state is for."""
    for seed in range(40):
        rng = random.Random(seed)
        crashes, restarts = [], []
        t = 0.5
        while t < 10.0:
            victim = rng.randrange(4)
            down = t + rng.uniform(0.0, 0.5)
            crashes.append((round(t, 3), victim))
            restarts.append((round(down, 3), victim))
            t = down + rng.uniform(0.05, 1.0)
        s = sim(seed, crashes=crashes, restarts=restarts, drop=0.05)
        signed: dict[tuple, bytes] = {}
        send = s._send

        def watch(
            src: int, dst: int, msg: object, send=send, s=s, signed=signed, seed=seed
        ) -> None:
            if isinstance(msg, TbftVote) and msg.voter == s.ids[src]:
                key = (msg.voter, msg.height, msg.round, msg.kind)
                first = signed.setdefault(key, msg.block_hash)
                assert first == msg.block_hash, f"double-signed {key} (seed {seed})"
            send(src, dst, msg)

        monkeypatch.setattr(s, "_send", watch)
        result = s.run(until_time=16.0)
        assert result.safe, result
        assert min(result.heights) > 2, result
        assert any(k[3] == PRECOMMIT for k in signed)


def test_same_seed_same_trace_and_the_result_replays_itself() -> None:
    options = {
        "byzantine": {2: "equivocate"},
        "drop": 0.1,
        "crashes": [(3.0, 1)],
        "restarts": [(5.0, 1)],
        "keep_trace": True,
    }
    a = sim(77, **options).run(until_time=10.0)
    b = sim(77, **options).run(until_time=10.0)
    assert a.trace == b.trace and len(a.trace) > 500
    assert a.digest == b.digest and a.heights == b.heights
    assert sim(78, **options).run(until_time=10.0).digest != a.digest
    # A run's own record is enough to reproduce it, faults injected mid-run included.
    s = sim(5, drop=0.05)
    s.run(until_time=3.0)
    s.crash(0)
    s.run(until_time=5.0)
    s.restart(0)
    first = s.run(until_time=9.0)
    assert "--seed 5" in first.replay_command and "crashes" in first.replay_command
    again = Simulation(seed=first.seed, **first.options).run(**first.until)
    assert again.digest == first.digest and again.heights == first.heights


def test_messages_and_state_survive_the_real_wire_format() -> None:
    """With wire_check every message and saved state goes through msgpack as on the real chain."""
    for seed in range(6):
        result = sim(
            seed,
            byzantine={seed % 4: "equivocate"},
            crashes=[(2.0, (seed + 1) % 4)],
            restarts=[(4.0, (seed + 1) % 4)],
            wire_check=True,
        ).run(until_time=10.0)
        assert result.safe, result
        assert min(result.heights[i] for i in result.honest) >= 3, result


class OneVoteTBFT(TBFTEngine):
    """A broken engine: one vote is a 'quorum', so every validator decides on what it saw first."""

    name = "tbft-one-vote"

    @staticmethod
    def quorum(n: int) -> int:
        return 1


def test_the_safety_check_catches_a_broken_engine() -> None:
    unsafe = []
    for seed in range(20):
        result = Simulation(
            OneVoteTBFT, n=4, seed=seed, params=TBFT_FAST, byzantine={0: "equivocate"}
        ).run(until_time=8.0)
        if not result.safe:
            unsafe.append(result)
    assert unsafe, "a one-vote quorum must fork under an equivocating proposer"
    assert "fork at height" in unsafe[0].violations[0]
    assert "test_sim_tbft:OneVoteTBFT" in unsafe[0].replay_command


def test_run_needs_a_stop_condition() -> None:
    with pytest.raises(ValueError, match="until_time"):
        sim(0).run()


def test_a_validator_joining_and_leaving_by_height_keeps_the_chain_safe_and_live() -> None:
    """Node 4 follows the chain outside the set, votes from height 4 on and leaves at 9: the
    switch happens at one height everywhere, so no two nodes ever count different quorums."""
    changes = [(1, [0, 1, 2, 3]), (4, [0, 1, 2, 3, 4]), (9, [0, 1, 2, 3])]
    joined = hashlib.sha256(b"validator-4").hexdigest()[:40]
    for seed in range(40):
        s = Simulation(
            "tbft",
            n=5,
            seed=seed,
            params=TBFT_FAST,
            delay=(0.001, 0.08),
            drop=0.05 if seed % 2 else 0.0,
            validator_sets=changes,
            wire_check=seed % 5 == 0,
        )
        result = s.run(until_time=15.0)
        assert result.safe, result
        assert result.min_honest_height() >= 12, f"stalled across the changes: {result}"
        node = s.nodes[0]
        voters = {h: {v.voter for v in node.proofs[h]} for h in range(1, len(node.chain))}
        assert all(joined not in voters[h] for h in range(1, 4)), result  # not yet a validator
        assert any(joined in voters[h] for h in range(4, 9)), result  # it votes once it is
        assert all(joined not in voters[h] for h in range(9, 12)), result  # and no more
