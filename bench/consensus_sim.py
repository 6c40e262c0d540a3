"""How fast the deterministic simulator runs TBFT: wall time for 1,000 committed heights.

The grader runs learners' engines in the simulator over many seeds, so a run must be cheap. The
figure is 4-validator TBFT with one validator crashed from the start — it is the proposer of every
fourth height, so those heights need a round change — beside the same network with no faulty
validator (the anchor), measured in the same run. Default engine parameters; best of three.

Goal: the faulty run in <= 2 s of wall time on the project machine.

    .venv/bin/python bench/consensus_sim.py [--heights 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

from labs.minichain.sim import Simulation

GOAL_SECONDS = 2.0


def timed_run(heights: int, faulty: bool, seed: int) -> tuple[float, float, int]:
    """Wall seconds, virtual seconds and events until every live node committed ``heights``."""
    sim = Simulation("tbft", n=4, seed=seed, crashes=[(0.0, 3)] if faulty else None)
    start = time.perf_counter()
    result = sim.run(until_height=heights, until_time=1e9)
    wall = time.perf_counter() - start
    live = [h for i, h in enumerate(result.heights) if not (faulty and i == 3)]
    if not result.safe or min(live) < heights:
        raise SystemExit(f"the benchmark run itself failed: {result}")
    return wall, result.time, result.events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heights", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = {}
    for name, faulty in (("tbft-4 (no faulty)", False), ("tbft-4 (1 faulty)", True)):
        runs = [timed_run(args.heights, faulty, seed) for seed in range(args.repeat)]
        rows[name] = min(runs)
    anchor = rows["tbft-4 (no faulty)"][0]
    for name, (wall, virtual, events) in rows.items():
        print(
            f"{name}: {args.heights} heights in {wall:.2f} s wall ({virtual:.0f} s virtual, "
            f"{events} events, {events / wall:,.0f} events/s); "
            f"ratio to no-faulty {wall / anchor:.2f}",
            flush=True,
        )
    wall = rows["tbft-4 (1 faulty)"][0]
    verdict = "OK" if wall <= GOAL_SECONDS else "ABOVE GOAL"
    print(f"tbft-4 (1 faulty): {args.heights} heights in {wall:.2f} s (goal <= 2 s) {verdict}")


if __name__ == "__main__":
    main()
