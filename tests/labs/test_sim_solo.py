"""Solo in the deterministic simulator: one producer commits every height once, in order."""

from __future__ import annotations

from labs.minichain.sim import GENESIS, Simulation


def test_solo_commits_blocks_in_order_with_transactions() -> None:
    result = Simulation("solo", n=1, seed=1, tx_interval=0.05).run(until_time=10.0)
    assert result.safe, result
    # A block as soon as transactions are there (every 0.05 s after the previous commit).
    assert result.heights[0] >= 150, result
    s = Simulation("solo", n=1, seed=1, tx_interval=0.05)
    s.run(until_time=10.0)
    chain = s.nodes[0].chain
    assert [b.height for b in chain] == list(range(len(chain)))
    assert chain[0] is GENESIS
    assert all(chain[h].parent_hash == chain[h - 1].hash for h in range(1, len(chain)))


def test_solo_makes_empty_blocks_on_its_interval() -> None:
    result = Simulation(
        "solo", n=1, seed=2, pending_transactions=False, params={"empty_block_interval": 0.5}
    ).run(until_time=10.01)
    assert result.safe, result
    assert result.heights == [20], result  # one empty block every 0.5 s of virtual time


def test_solo_survives_a_crash_and_goes_on_from_its_committed_height() -> None:
    s = Simulation("solo", n=1, seed=3, crashes=[(3.0, 0)], restarts=[(5.0, 0)])
    at_crash = s.run(until_time=3.0).heights[0]
    assert s.run(until_time=5.0).heights[0] == at_crash  # down: nothing moves
    end = s.run(until_time=8.0)
    assert end.safe, end
    assert end.heights[0] > at_crash


def test_only_the_first_validator_produces_so_solo_never_forks() -> None:
    result = Simulation("solo", n=3, seed=4).run(until_time=5.0)
    assert result.safe, result
    assert result.heights[0] > 10 and result.heights[1:] == [0, 0]
