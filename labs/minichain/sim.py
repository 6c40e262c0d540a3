"""A deterministic simulator: the very same consensus engines, one process, virtual time.

Every source of non-determinism a real network has (message delays, losses, partitions, crashes,
byzantine validators) is drawn from one ``random.Random(seed)``, so a run is a pure function of its
options: a failure found on seed 1234 replays exactly with ``Simulation(..., seed=1234)``. The
grader runs learners' engines here, and the tests run the chain's own engines over hundreds of
seeds.

What the simulator checks while it runs:

- safety: no two honest validators ever commit different blocks at one height, and each validator
  commits every height exactly once, in order (``SimResult.violations``);
- liveness: how far every validator got (``SimResult.heights``).

A crash is ``kill -9``: the engine object is dropped with everything it did not ``save_state``; a
restart builds a fresh engine on the saved state and the committed blocks.
"""

from __future__ import annotations

import ast
import hashlib
import heapq
import hmac
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

import msgpack

from .consensus import ConsensusEngine, from_wire, load_engine, to_wire
from .consensus.byzantine import make_byzantine


class SimBlock:
    """A block with no transactions: height, parent and an opaque payload are all consensus needs.

    A plain class, not a dataclass: the wire format treats dataclasses as messages and anything with
    ``encode()`` and ``hash`` as a block, and this must travel as a block.
    """

    __slots__ = ("height", "parent_hash", "proposer", "payload", "hash")

    def __init__(
        self, height: int, parent_hash: bytes, proposer: str, payload: bytes, hash: bytes
    ) -> None:
        self.height = height
        self.parent_hash = parent_hash
        self.proposer = proposer
        self.payload = payload
        self.hash = hash

    @staticmethod
    def make(height: int, parent_hash: bytes, proposer: str, payload: bytes) -> SimBlock:
        body = SimBlock._body(height, parent_hash, proposer, payload)
        return SimBlock(height, parent_hash, proposer, payload, hashlib.sha256(body).digest())

    @staticmethod
    def _body(height: int, parent_hash: bytes, proposer: str, payload: bytes) -> bytes:
        p = proposer.encode()
        return struct.pack(">QH", height, len(p)) + p + parent_hash + payload

    def encode(self) -> bytes:
        return self._body(self.height, self.parent_hash, self.proposer, self.payload)

    @staticmethod
    def decode(data: bytes) -> SimBlock:
        """Inverse of :meth:`encode` (the hash is recomputed: a tampered block changes identity)."""
        if len(data) < 10:
            raise ValueError("not a simulator block")
        height, plen = struct.unpack(">QH", data[:10])
        proposer = data[10 : 10 + plen].decode()
        parent = data[10 + plen : 42 + plen]
        return SimBlock.make(height, parent, proposer, data[42 + plen :])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SimBlock) and other.hash == self.hash

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return f"SimBlock(height={self.height}, hash={self.hash.hex()[:12]})"


GENESIS = SimBlock.make(0, b"\x00" * 32, "", b"genesis")


def wire_round_trip(value: Any) -> Any:
    """``value`` after the trip the real node gives it (to_wire, msgpack, from_wire): a message or
    state that survives this is one the real chain can send and store."""
    packed = msgpack.packb(to_wire(value), use_bin_type=True)
    return from_wire(msgpack.unpackb(packed, raw=False), SimBlock.decode)


class SimNode:
    """One validator's durable world: committed blocks and the engine's saved state."""

    def __init__(self, sim: Simulation, index: int, node_id: str) -> None:
        self.sim = sim
        self.index = index
        self.id = node_id
        self.chain: list[SimBlock] = [GENESIS]
        self.proofs: list[Any] = [None]
        self.saved: dict | None = None
        self.alive = True
        self.generation = 0
        self.engine: ConsensusEngine | None = None
        self.secret = hashlib.sha256(f"{sim.seed}/{node_id}".encode()).digest()
        self.byzantine: str | None = None
        self.last_commit = 0.0


class SimHost:
    """The Host one engine instance sees inside the simulator."""

    def __init__(self, sim: Simulation, node: SimNode, generation: int) -> None:
        self.sim = sim
        self.node = node
        self.generation = generation
        self.node_id = node.id
        self.validators: Sequence[str] = sim.ids

    def validators_at(self, height: int) -> Sequence[str]:
        """The validators from ``validator_sets`` for ``height``: the last set that starts at or
        below it (every node, before any starts), as a chain configuration update would."""
        chosen = list(range(self.sim.n))
        for start, indices in self.sim.validator_sets:
            if start <= height:
                chosen = indices
        return [self.sim.ids[i] for i in chosen]

    def now(self) -> float:
        return self.sim.time

    def _live(self) -> bool:
        return self.node.alive and self.node.generation == self.generation

    def send(self, to: str, msg: Any) -> None:
        if self._live():
            if self.sim.wire_check:
                msg = wire_round_trip(msg)
            self.sim._send(self.node.index, self.sim.index_of[to], msg)

    def broadcast(self, msg: Any) -> None:
        if self._live():
            if self.sim.wire_check:
                msg = wire_round_trip(msg)
            me = self.node.index
            for j in range(self.sim.n):
                if j != me:
                    self.sim._send(me, j, msg)

    def set_timer(self, delay: float, tag: tuple) -> None:
        if self._live():
            self.sim._push(
                self.sim.time + max(0.0, delay), 1, (self.node.index, self.generation, tag)
            )

    def sign(self, data: bytes) -> bytes:
        return hmac.digest(self.node.secret, data, "sha256")[:16]

    def verify(self, signer: str, data: bytes, signature: bytes) -> bool:
        j = self.sim.index_of.get(signer)
        if j is None or not isinstance(signature, bytes):
            return False
        return hmac.compare_digest(
            hmac.digest(self.sim.nodes[j].secret, data, "sha256")[:16], signature
        )

    def committed_height(self) -> int:
        return len(self.node.chain) - 1

    def committed_block(self, height: int) -> tuple[SimBlock, Any] | None:
        if 0 < height < len(self.node.chain):
            return self.node.chain[height], self.node.proofs[height]
        return None

    def has_pending_transactions(self) -> bool:
        """Transactions arrive once ``tx_interval`` has passed since this node's last commit."""
        sim = self.sim
        return sim.pending_transactions and sim.time >= self.node.last_commit + sim.tx_interval

    def create_block(self, height: int, variant: int = 0) -> SimBlock:
        payload = struct.pack(">QQ", self.sim.rng.getrandbits(64), variant)
        return SimBlock.make(height, self.node.chain[-1].hash, self.node_id, payload)

    def validate_block(self, block: Any) -> bool:
        return (
            isinstance(block, SimBlock)
            and block.height == len(self.node.chain)
            and block.parent_hash == self.node.chain[-1].hash
        )

    def commit_block(self, block: Any, proof: Any) -> None:
        if self._live():
            self.sim._commit(self.node, block, proof)

    def save_state(self, state: dict) -> None:
        if self._live():
            self.node.saved = wire_round_trip(state) if self.sim.wire_check else state

    def load_state(self) -> dict | None:
        return self.node.saved

    def log(self, event: str, **fields: Any) -> None:
        if self.sim.keep_trace:
            self.sim.trace.append((round(self.sim.time, 6), self.node.index, event, fields))


class SimOptions(TypedDict):
    """A run's options as :class:`Simulation` records them: its keyword arguments, engine named."""

    engine: str
    n: int
    params: dict
    delay: tuple[float, float]
    drop: float
    byzantine: dict[int, str]
    crashes: list[tuple[float, int]]
    restarts: list[tuple[float, int]]
    partitions: list[tuple[float, float, list[list[int]]]]
    pending_transactions: bool
    tx_interval: float
    wire_check: bool
    validator_sets: NotRequired[list[tuple[int, list[int]]]]


@dataclass
class SimResult:
    """What one run did. ``digest`` summarises every commit and fault: equal digests, equal runs."""

    seed: int
    options: SimOptions
    time: float
    events: int
    heights: list[int]
    honest: list[int]
    violations: list[str]
    digest: str
    trace: list = field(default_factory=list)
    hashes: list[list[bytes]] = field(default_factory=list)
    """Per node, the hashes of its committed blocks (index = height; genesis at 0)."""
    until: dict = field(default_factory=dict)

    @property
    def safe(self) -> bool:
        return not self.violations

    def min_honest_height(self) -> int:
        return min(self.heights[i] for i in self.honest)

    def replay(self) -> str:
        """The Python call that reproduces this run exactly."""
        until = ", ".join(f"{k}={v!r}" for k, v in self.until.items())
        return f"Simulation(seed={self.seed}, **{self.options!r}).run({until})"

    @property
    def replay_command(self) -> str:
        """The shell command that reproduces this run exactly and prints its result."""
        until = " ".join(f"--{k.replace('_', '-')} {v!r}" for k, v in self.until.items())
        opts = repr(self.options).replace("'", '"')
        return f"python -m labs.minichain.sim --seed {self.seed} {until} --options '{opts}'"

    def __str__(self) -> str:
        state = "SAFE" if self.safe else f"UNSAFE ({'; '.join(self.violations[:3])})"
        return (
            f"seed {self.seed}: {state}, heights {self.heights} at t={self.time:.2f}s; "
            f"replay: {self.replay_command}"
        )

    __repr__ = __str__


class Simulation:
    """A seeded, virtual-time network of ``n`` validators running one consensus engine.

    Options (all part of the replay): ``engine`` (name, ``module:Class`` or a class), ``params`` for
    the engine, ``delay`` (min, max seconds per message), ``drop`` (probability), ``byzantine``
    ({index: mode}), ``crashes`` ([(time, index)]), ``restarts`` ([(time, index)]), ``partitions``
    ([(start, end, [[indices], [indices]])]), ``pending_transactions`` (proposers have work),
    ``tx_interval`` (virtual seconds after a commit before new transactions are there; the engine
    then gets ``on_transactions``) and ``wire_check`` (send every message and saved state through
    the real node's msgpack wire format, to catch what the real chain could not carry).
    ``validator_sets`` ([(first height, [indices])]) changes who validates from a height on.
    ``keep_trace`` records every delivery, commit, fault and engine log in ``SimResult.trace``.

    Faults may also be injected between ``run`` calls (:meth:`crash`, :meth:`restart`); they are
    recorded in the options, so ``SimResult.replay_command`` still reproduces the run.
    """

    ZENO_LIMIT = 200_000
    """Events at one instant of virtual time before a run is declared stuck (a zero-delay loop)."""

    def __init__(
        self,
        engine: str | type[ConsensusEngine] = "tbft",
        n: int = 4,
        seed: int = 0,
        params: dict | None = None,
        delay: tuple[float, float] = (0.001, 0.05),
        drop: float = 0.0,
        byzantine: dict[int, str] | None = None,
        crashes: list[tuple[float, int]] | None = None,
        restarts: list[tuple[float, int]] | None = None,
        partitions: list[tuple[float, float, list[list[int]]]] | None = None,
        pending_transactions: bool = True,
        tx_interval: float = 0.05,
        keep_trace: bool = False,
        wire_check: bool = False,
        validator_sets: list[tuple[int, list[int]]] | None = None,
    ) -> None:
        import random

        self.engine_cls = load_engine(engine) if isinstance(engine, str) else engine
        self.options: SimOptions = {
            "engine": engine
            if isinstance(engine, str)
            else f"{engine.__module__}:{engine.__qualname__}",
            "n": n,
            "params": params or {},
            "delay": delay,
            "drop": drop,
            "byzantine": byzantine or {},
            "crashes": list(crashes or []),
            "restarts": list(restarts or []),
            "partitions": list(partitions or []),
            "pending_transactions": pending_transactions,
            "tx_interval": tx_interval,
            "wire_check": wire_check,
        }
        if validator_sets:  # recorded only when given: older replays keep their exact options
            self.options["validator_sets"] = [(h, list(ix)) for h, ix in validator_sets]
        self.validator_sets = sorted((h, list(ix)) for h, ix in validator_sets or [])
        """(first height, validator indices): the set changes there, as a chain configuration
        update changes it on a real chain (see :meth:`SimHost.validators_at`)."""
        self.seed = seed
        self.n = n
        self.params = params or {}
        self.delay = delay
        self.drop = drop
        self.rng = random.Random(seed)
        self.pending_transactions = pending_transactions
        self.tx_interval = tx_interval
        self.keep_trace = keep_trace
        self.wire_check = wire_check
        self.trace: list = []
        self.time = 0.0
        self.events = 0
        self.started = False
        self.until: dict = {}
        self._seq = 0
        self._heap: list = []
        self.ids = [hashlib.sha256(f"validator-{i}".encode()).hexdigest()[:40] for i in range(n)]
        self.index_of = {vid: i for i, vid in enumerate(self.ids)}
        self.nodes = [SimNode(self, i, vid) for i, vid in enumerate(self.ids)]
        for i, mode in (byzantine or {}).items():
            self.nodes[i].byzantine = mode
        self.byzantine_set = set((byzantine or {}).keys())
        self.group: list[int] | None = None
        self.commits: dict[int, tuple[bytes, int]] = {}
        self.violations: list[str] = []
        self._digest = hashlib.sha256(b"%d" % seed)  # the event stream; options join at the end
        for t, i in crashes or []:
            self._push(t, 0, ("crash", i))
        for t, i in restarts or []:
            self._push(t, 0, ("restart", i))
        for start, end, groups in partitions or []:
            self._push(start, 0, ("partition", groups))
            self._push(end, 0, ("heal", None))

    # -- event machinery -----------------------------------------------------------------------
    def _push(self, at: float, kind: int, payload: Any) -> None:
        """kind 0 = control, 1 = timer, 2 = message delivery; at one instant, faults come first."""
        self._seq += 1
        heapq.heappush(self._heap, (at, kind, self._seq, payload))

    def _send(self, src: int, dst: int, msg: Any) -> None:
        if self.group is not None and self.group[src] != self.group[dst]:
            return
        rng = self.rng
        if self.drop and rng.random() < self.drop:
            return
        lo, hi = self.delay
        self._push(self.time + lo + (hi - lo) * rng.random(), 2, (src, dst, msg))

    def _commit(self, node: SimNode, block: Any, proof: Any) -> None:
        h = len(node.chain)
        if (
            not isinstance(block, SimBlock)
            or block.height != h
            or block.parent_hash != node.chain[-1].hash
        ):
            self.violations.append(
                f"t={self.time:.3f} node {node.index} committed out of order at height {h}"
            )
            return
        node.chain.append(block)
        node.proofs.append(proof)
        node.last_commit = self.time
        self._announce_transactions(node)
        self._digest.update(b"%d|%d|" % (node.index, h) + block.hash)
        if self.keep_trace:
            self.trace.append((self.time, node.index, "commit", {"height": h, "hash": block.hash}))
        if node.index in self.byzantine_set:
            return
        first = self.commits.get(h)
        if first is None:
            self.commits[h] = (block.hash, node.index)
        elif first[0] != block.hash:
            self.violations.append(
                f"t={self.time:.3f} fork at height {h}: "
                f"node {first[1]} committed {first[0].hex()[:12]}, "
                f"node {node.index} committed {block.hash.hex()[:12]}"
            )

    def _start_engine(self, node: SimNode) -> None:
        node.generation += 1
        cls = self.engine_cls
        if node.byzantine:
            cls = make_byzantine(cls, node.byzantine)
        host = SimHost(self, node, node.generation)
        node.engine = cls(host, **self.params)
        node.engine.start()
        self._announce_transactions(node)

    def _announce_transactions(self, node: SimNode) -> None:
        """Call the engine's ``on_transactions`` hint when this node's next transactions arrive."""
        if self.pending_transactions:
            at = max(self.time, node.last_commit + self.tx_interval)
            self._push(at, 1, (node.index, node.generation, None))

    def _control(self, payload: tuple) -> None:
        what, arg = payload
        if what == "crash":
            node = self.nodes[arg]
            node.alive = False
            node.generation += 1
            node.engine = None
        elif what == "restart":
            node = self.nodes[arg]
            if not node.alive:
                node.alive = True
                self._start_engine(node)
        elif what == "partition":
            self.group = [0] * self.n
            for g, members in enumerate(arg):
                for i in members:
                    self.group[i] = g + 1
        elif what == "heal":
            self.group = None
        self._digest.update(repr((round(self.time, 9), what, arg)).encode())
        if self.keep_trace:
            self.trace.append((self.time, -1, what, {"arg": arg}))

    # -- faults injected between runs -----------------------------------------------------------
    def crash(self, index: int) -> None:
        """kill -9 validator ``index`` now. Recorded in the options, so the run stays replayable
        (exactly so after ``run(until_time=...)``, which stops before that instant's events)."""
        self.options["crashes"].append((self.time, index))
        self._push(self.time, 0, ("crash", index))

    def restart(self, index: int) -> None:
        """Restart a crashed validator now from its saved state and committed blocks (recorded)."""
        self.options["restarts"].append((self.time, index))
        self._push(self.time, 0, ("restart", index))

    def engine(self, index: int) -> ConsensusEngine | None:
        """The running engine object of validator ``index`` (None while crashed)."""
        return self.nodes[index].engine

    # -- running -------------------------------------------------------------------------------
    def run(
        self,
        until_time: float | None = None,
        until_height: int | None = None,
        max_events: int = 10_000_000,
    ) -> SimResult:
        """Run until virtual time ``until_time`` (events at that instant stay queued), or until
        every honest live node reaches ``until_height``, whichever comes first. May be called
        again to go on.
        """
        if until_time is None and until_height is None:
            raise ValueError("give run() until_time=<virtual seconds> or until_height=<height>")
        self.until = {
            k: v
            for k, v in (("until_time", until_time), ("until_height", until_height))
            if v is not None
        }
        if not self.started:
            self.started = True
            for node in self.nodes:
                self._start_engine(node)
        heap = self._heap
        nodes = self.nodes
        honest = [i for i in range(self.n) if i not in self.byzantine_set]
        pop = heapq.heappop
        same_instant = 0
        trace = self.trace if self.keep_trace else None
        while heap and self.events < max_events:
            at, kind, _, payload = heap[0]
            if until_time is not None and at >= until_time:
                self.time = until_time
                break
            pop(heap)
            if at == self.time:
                same_instant += 1
                if same_instant > self.ZENO_LIMIT:
                    self.violations.append(
                        f"t={at:.3f}: virtual time stopped "
                        f"({self.ZENO_LIMIT} events at one instant): "
                        "an engine schedules work with zero delay forever"
                    )
                    break
            else:
                same_instant = 0
            self.time = at
            self.events += 1
            if kind == 2:
                src, dst, msg = payload
                node = nodes[dst]
                if trace is not None:
                    trace.append((at, dst, "recv", {"from": src, "msg": _describe(msg)}))
                if node.alive and node.engine is not None:
                    node.engine.on_message(self.ids[src], msg)
                    if (
                        until_height is not None
                        and len(node.chain) > until_height
                        and self._reached(until_height, honest)
                    ):
                        break
            elif kind == 1:
                i, gen, tag = payload
                node = nodes[i]
                if node.alive and node.generation == gen and node.engine is not None:
                    if tag is None:
                        node.engine.on_transactions()
                    else:
                        node.engine.on_timer(tag)
            else:
                self._control(payload)
        heights = [len(node.chain) - 1 for node in nodes]
        return SimResult(
            seed=self.seed,
            options=self.options,
            time=self.time,
            events=self.events,
            heights=heights,
            honest=honest,
            violations=list(self.violations),
            digest=hashlib.sha256(repr(self.options).encode() + self._digest.digest()).hexdigest(),
            trace=self.trace,
            hashes=[[b.hash for b in node.chain] for node in nodes],
            until=dict(self.until),
        )

    def _reached(self, height: int, honest: list[int]) -> bool:
        return all(len(self.nodes[i].chain) > height for i in honest if self.nodes[i].alive)


def _describe(msg: Any) -> str:
    """A deterministic one-line picture of a message for the trace (type and small fields)."""
    fields = getattr(msg, "__dataclass_fields__", None)
    if not fields:
        return type(msg).__name__
    parts = []
    for name in fields:
        value = getattr(msg, name)
        if isinstance(value, bytes):
            value = value.hex()[:12]
        elif not isinstance(value, int | str | bool) and value is not None:
            value = getattr(value, "hash", b"").hex()[:12] if hasattr(value, "hash") else "..."
        parts.append(f"{name}={value}")
    return f"{type(msg).__name__}({', '.join(parts)})"


def main(argv: list[str] | None = None) -> int:
    """Replay one run from its seed and options (a result's ``replay_command``) and print it."""
    import argparse

    parser = argparse.ArgumentParser(description="Replay a minichain consensus simulation.")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--options", default="{}", help="the options dict printed with the result")
    parser.add_argument("--until-time", type=float)
    parser.add_argument("--until-height", type=int)
    parser.add_argument("--trace", action="store_true", help="print the event trace too")
    args = parser.parse_args(argv)
    try:
        options = ast.literal_eval(args.options)
        if not isinstance(options, dict):
            raise ValueError("not a dict")
    except (ValueError, SyntaxError) as exc:
        print(f"--options must be the Python dict printed with the result ({exc})", file=sys.stderr)
        return 2
    if args.until_time is None and args.until_height is None:
        args.until_time = 60.0
    try:
        sim = Simulation(seed=args.seed, keep_trace=args.trace, **options)
        result = sim.run(until_time=args.until_time, until_height=args.until_height)
    except (TypeError, ValueError) as exc:
        print(f"cannot replay: {exc}", file=sys.stderr)
        return 2
    if args.trace:
        for entry in result.trace:
            print(*entry)
    print(result)
    return 0 if result.safe else 1


if __name__ == "__main__":
    sys.exit(main())
