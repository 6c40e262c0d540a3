"""Run a learner's consensus engine in the minichain simulator over many seeds and fault schedules.

The engine (a :class:`labs.minichain.consensus.ConsensusEngine` subclass, or its ``"module:Class"``
path) runs in :class:`labs.minichain.sim.Simulation`: virtual time, seeded message delays, and the
fault schedules below. Each run must be

* safe: no two honest validators commit different blocks at one height, every validator commits
  heights in order, each block links to its parent;
* live: once the faults are over, every honest validator commits ``height`` more blocks before
  ``until_time`` virtual seconds (crashed validators are restarted and partitions heal, so a
  correct engine always gets there).

A failure names the schedule, the seed and the exact Python call that replays the run, e.g.
``liveness: under 'partition' (seed 7) honest validators reached heights [2, 2, 9, 9], not 9,
by t=30s; replay: s = Simulation('__main__:MyBFT', seed=7, n=4, ...); s.run(until_time=3.1);
s.run(until_height=9, until_time=30.0)``.

Example (a hidden test cell; the learner wrote ``class MyBFT(ConsensusEngine)`` above)::

    from grader.checks.consensus import check_engine
    check_engine(MyBFT, n=4, seeds=range(10), faults=("none", "crash", "partition", "byzantine"))

Schedules (``faults``): ``none``; ``crash`` (one validator is killed -9 and restarted from its
saved state); ``partition`` (a 2|2 split that heals; for n < 4 a 1|rest split); ``byzantine``
(one validator equivocates, sends bad votes or goes silent; needs n >= 4 and a BFT engine);
``drops`` (5 % of messages lost). Every seed draws its own fault times and victims.

Trust: safety is judged twice, by the simulator as it runs and afterwards by this module from the
committed blocks alone (each block re-hashed from its fields, parents linked, honest chains
compared), so an engine that tampers with the simulator's bookkeeping still has to produce
chains that agree.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any, cast

from grader.checks.messages import say
from grader.remote import is_handle, learner_module, type_name
from labs.minichain.consensus import ConsensusEngine, EngineNotFound, load_engine
from labs.minichain.consensus.byzantine import MODES as BYZANTINE_MODES
from labs.minichain.sim import SimBlock, SimResult, Simulation

__all__ = ["FAULTS", "check_engine", "schedule"]

FAULTS = ("none", "crash", "partition", "byzantine", "drops")


def schedule(fault: str, seed: int, n: int) -> tuple[dict[str, Any], float]:
    """(Simulation options, virtual time when the last fault is over) of one schedule and seed.

    Faults start between 0.2 and 2 virtual seconds and last 0.5 to 3 s, so they hit a running
    chain; byzantine validators and message drops last the whole run.
    """
    rng = random.Random(f"{fault}:{seed}")
    if fault == "none":
        return {}, 0.0
    if fault == "drops":
        return {"drop": 0.05}, 0.0
    if fault == "crash":
        victim = rng.randrange(n)
        at = round(rng.uniform(0.2, 2.0), 3)
        back = round(at + rng.uniform(0.5, 3.0), 3)
        return {"crashes": [(at, victim)], "restarts": [(back, victim)]}, back
    if fault == "partition":
        order = list(range(n))
        rng.shuffle(order)
        cut = n // 2 if n >= 4 else 1
        start = round(rng.uniform(0.2, 2.0), 3)
        end = round(start + rng.uniform(0.5, 3.0), 3)
        return {"partitions": [(start, end, [sorted(order[:cut]), sorted(order[cut:])])]}, end
    if fault == "byzantine":
        if n < 4:
            raise ValueError("the byzantine schedule needs n >= 4 (one faulty of 3f+1)")
        mode = BYZANTINE_MODES[seed % len(BYZANTINE_MODES)]
        return {"byzantine": {rng.randrange(n): mode}}, 0.0
    raise ValueError(f"unknown fault schedule {fault!r}: use some of {', '.join(FAULTS)}")


def _engine_class(engine: Any) -> type[ConsensusEngine]:
    if is_handle(engine):
        return cast("type[ConsensusEngine]", engine)
    if isinstance(engine, str):
        try:
            return load_engine(engine)
        except EngineNotFound as exc:
            raise AssertionError(str(exc)) from None
    # Duck-typed on purpose: in the sandbox the learner's class may subclass a ConsensusEngine
    # from another import of the module than the one this checker sees.
    hooks = ("start", "on_message", "on_timer", "on_transactions")
    if not (isinstance(engine, type) and all(callable(getattr(engine, h, None)) for h in hooks)):
        raise AssertionError(say("not_an_engine", kind=type(engine).__name__))
    return engine


def _verify_chains(sim: Simulation, honest: Sequence[int]) -> str | None:
    """Re-check safety from the committed blocks themselves: rehash, link, compare honest chains."""
    first: dict[int, tuple[bytes, int]] = {}
    for index in honest:
        chain = list(sim.nodes[index].chain)
        for height in range(1, len(chain)):
            block, parent = chain[height], chain[height - 1]
            kind = type_name(block) if is_handle(block) else type(block).__name__
            if kind != "SimBlock" or (not is_handle(block) and type(block) is not SimBlock):
                return say("chain_wrong_type", index=index, kind=kind, height=height)
            again = SimBlock.make(
                int(block.height),
                bytes(block.parent_hash),
                str(block.proposer),
                bytes(block.payload),
            )
            if again.hash != bytes(block.hash) or again.height != height:
                return say("chain_malformed", index=index, height=height)
            if again.parent_hash != bytes(parent.hash):
                return say("chain_unlinked", index=index, height=height)
            seen = first.setdefault(height, (again.hash, index))
            if seen[0] != again.hash:
                return say(
                    "chain_fork",
                    height=height,
                    a=seen[1],
                    hash_a=seen[0].hex()[:12],
                    b=index,
                    hash_b=again.hash.hex()[:12],
                )
    return None


def check_engine(
    engine: type[ConsensusEngine] | str,
    *,
    n: int = 4,
    seeds: Iterable[int] = range(10),
    faults: Sequence[str] = ("none", "crash", "partition"),
    height: int = 5,
    until_time: float = 30.0,
    params: dict[str, Any] | None = None,
    delay: tuple[float, float] = (0.001, 0.05),
) -> list[SimResult]:
    """Assert safety and liveness of ``engine`` for every (fault schedule, seed); return the runs.

    ``params`` go to the engine's constructor. ``height`` and ``until_time`` (virtual seconds)
    bound each run. The first failing run raises AssertionError naming how to replay it.
    """
    cls = _engine_class(engine)
    # A learner class seen from the judge cannot cross: the simulation runs beside it, in the
    # learner's sandbox, and this checker judges what it committed again from the blocks' data.
    simulation: Any = (
        learner_module(cast(Any, engine), "labs.minichain.sim").Simulation
        if is_handle(engine)
        else Simulation
    )
    for fault in faults:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault schedule {fault!r}: use some of {', '.join(FAULTS)}")
    results: list[SimResult] = []
    for fault in faults:
        for seed in seeds:
            extra, settled = schedule(fault, seed, n)
            options = {"n": n, "params": dict(params or {}), "delay": delay, **extra}
            sim = simulation(cls, seed=seed, **options)
            where = say("under_fault", fault=fault, seed=seed)
            shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
            named = "'__main__:YourEngine'" if is_handle(engine) else repr(sim.options["engine"])
            replay = f"s = Simulation({named}, seed={seed}, {shown}); "
            try:
                # Through the faults first, then `height` more blocks once they are over.
                sim.run(until_time=settled) if settled else None
                start = min(len(sim.nodes[i].chain) - 1 for i in range(n))
                goal = start + height
                replay += (
                    f"s.run(until_time={settled!r}); " if settled else ""
                ) + f"s.run(until_height={goal}, until_time={until_time!r})"
                result = sim.run(until_height=goal, until_time=until_time)
            except Exception as exc:  # noqa: BLE001 - the learner's engine raised
                detail = str(exc).splitlines()[0][:200] if str(exc) else ""
                replay += f"s.run(until_height={height}, until_time={until_time!r})"
                error = type(exc).__name__ + (f": {detail}" if detail else "")
                raise AssertionError(
                    say(
                        "engine_raised",
                        error=error,
                        where=where,
                        time=f"{sim.time:.2f}",
                        replay=replay,
                    )
                ) from None
            honest = [i for i in range(n) if i not in sim.byzantine_set]
            problem = (result.violations[0] if result.violations else None) or _verify_chains(
                sim, honest
            )
            if problem:
                raise AssertionError(say("safety", problem=problem, where=where, replay=replay))
            heights = [len(sim.nodes[i].chain) - 1 for i in range(n)]
            if min(heights[i] for i in honest) < goal:
                reached = [heights[i] for i in honest]
                raise AssertionError(
                    say(
                        "liveness",
                        where=where,
                        reached=reached,
                        goal=goal,
                        until=f"{until_time:g}",
                        replay=replay,
                    )
                )
            results.append(result)
    return results
