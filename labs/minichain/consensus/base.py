"""The seam between consensus and the rest of a node.

An engine decides *which block comes next*; it never executes transactions, opens sockets or reads the
clock directly. Everything it needs from the outside world goes through a :class:`Host`. Two hosts
exist: the real node (``labs.minichain.node``: TCP peers on loopback, the EVM, SQLite) and the simulator
(``labs.minichain.sim``: virtual time, seeded faults). Because the same engine object runs under both,
a bug found by the simulator is a bug in the code the real chain runs, and a learner's engine can be
dropped into the same slot (see :func:`labs.minichain.consensus.load_engine`).

This mirrors Tendermint's ABCI split: ``Host.create_block`` / ``validate_block`` / ``commit_block`` are
the application calls; messages, timers and the write-ahead state are the engine's own business.

Rules every engine follows (the simulator checks them):

- Call ``host.commit_block`` exactly once per height, in height order, starting at
  ``host.committed_height() + 1``.
- Persist with ``host.save_state`` *before* sending any message that depends on that state (a vote, a
  term change): a validator killed at any instant and restarted must never contradict itself.
- Sign what other nodes must be able to check later with ``host.sign`` and check it with
  ``host.verify``; a message whose signature fails is dropped.
- Timers are never cancelled: ``on_timer`` receives the tag it was set with and ignores stale ones.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable


@runtime_checkable
class Block(Protocol):
    """What an engine knows about a block: where it sits and its identity. The payload is opaque."""

    height: int
    hash: bytes
    parent_hash: bytes

    def encode(self) -> bytes:
        """Bytes that the host's ``decode_block`` turns back into an equal block."""
        ...


class Host(Protocol):
    """Everything an engine may ask of the node (or simulator) it runs in."""

    node_id: str
    """This validator's id (a short hex string derived from its Ed25519 public key)."""

    validators: Sequence[str]
    """Ids of all validators, in the same order on every node (genesis order)."""

    def now(self) -> float:
        """Seconds on this node's clock (virtual in the simulator)."""
        ...

    def send(self, to: str, msg: Any) -> None:
        """Send one message to one validator. Delivery is best effort: it may be lost or delayed."""
        ...

    def broadcast(self, msg: Any) -> None:
        """Send one message to every *other* validator."""
        ...

    def set_timer(self, delay: float, tag: tuple) -> None:
        """Call ``engine.on_timer(tag)`` after ``delay`` seconds."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Sign bytes with this validator's key."""
        ...

    def verify(self, signer: str, data: bytes, signature: bytes) -> bool:
        """True when ``signature`` over ``data`` was made by validator ``signer`` (with a valid identity)."""
        ...

    def committed_height(self) -> int:
        """Height of the last committed block (0 = genesis only)."""
        ...

    def committed_block(self, height: int) -> tuple[Block, Any] | None:
        """A committed block and the proof it was committed with, for helping peers catch up."""
        ...

    def has_pending_transactions(self) -> bool:
        """True when the mempool holds transactions waiting for a block."""
        ...

    def create_block(self, height: int) -> Block:
        """Build a block on top of the last committed one (the application picks the transactions)."""
        ...

    def validate_block(self, block: Block) -> bool:
        """True when ``block`` is a valid next block on top of the last committed one."""
        ...

    def commit_block(self, block: Block, proof: Any) -> None:
        """Make ``block`` final. ``proof`` is whatever convinces a catching-up peer (e.g. precommits)."""
        ...

    def save_state(self, state: dict) -> None:
        """Durably store the engine's write-ahead state (msgpack-able dict), replacing the previous one."""
        ...

    def load_state(self) -> dict | None:
        """The last state given to ``save_state``, or None on first start."""
        ...

    def log(self, event: str, **fields: Any) -> None:
        """Record a consensus event (shown by ``minichain_consensusState`` and the simulator trace)."""
        ...


class ConsensusEngine(ABC):
    """One validator's consensus state machine. Subclass it to write a new engine."""

    name: ClassVar[str] = "engine"
    crash_fault_only: ClassVar[bool] = False
    """True for engines that tolerate crashes but not byzantine validators (raft, solo)."""

    def __init__(self, host: Host, **params: Any) -> None:
        self.host = host
        self.params = params

    @abstractmethod
    def start(self) -> None:
        """Begin (or resume after a restart, from ``host.load_state()``)."""

    @abstractmethod
    def on_message(self, sender: str, msg: Any) -> None:
        """A message from validator ``sender`` (authenticated by the transport)."""

    @abstractmethod
    def on_timer(self, tag: tuple) -> None:
        """A timer set with ``host.set_timer`` fired."""

    def on_transactions(self) -> None:
        """Hint: new transactions entered the mempool (an idle proposer may want to propose now)."""
        return None

    def status(self) -> dict:
        """A JSON-able view of the engine's state for ``minichain_consensusState``."""
        return {"engine": self.name}

    @staticmethod
    def quorum(n: int) -> int:
        """Smallest number of votes that is more than two thirds of ``n`` (BFT quorum)."""
        return (2 * n) // 3 + 1


def float_param(engine: str, params: dict, name: str, default: float) -> float:
    """Read one number >= 0 from the genesis consensus params, or fail with one clear line.

    Every engine reads its timeouts this way, so a wrong value in genesis.json fails the same way
    whichever engine it is for (learners' engines included)."""
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(
            f"{engine} parameter {name} must be a number >= 0 (seconds), got {value!r}: "
            "fix consensus.params in genesis.json"
        )
    return float(value)


# ---------------------------------------------------------------------------------------------------
# Messages and their wire format
# ---------------------------------------------------------------------------------------------------

_MESSAGES: dict[str, type] = {}


def message(cls: type) -> type:
    """Class decorator: register a dataclass as a wire message under its class name.

    Fields may hold ints, floats, str, bytes, None, bools, lists/tuples and dicts of those, blocks
    (anything with ``encode()``), and other registered messages.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} must be a dataclass to be a message")
    if cls.__name__ in _MESSAGES and _MESSAGES[cls.__name__] is not cls:
        raise TypeError(f"two messages are named {cls.__name__}: give one another name")
    _MESSAGES[cls.__name__] = cls
    return cls


def to_wire(value: Any) -> Any:
    """Turn a message (recursively) into msgpack-able plain data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$m": type(value).__name__, "f": fields}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, int | float | str | bytes | bool) or value is None:
        return value
    if hasattr(value, "encode") and hasattr(value, "hash"):
        return {"$b": value.encode()}
    raise TypeError(f"cannot send {type(value).__name__} in a consensus message")


def from_wire(data: Any, decode_block: Callable[[bytes], Block]) -> Any:
    """Inverse of :func:`to_wire`. Raises ValueError on anything malformed."""
    if isinstance(data, dict):
        if "$m" in data:
            cls = _MESSAGES.get(data["$m"])
            if cls is None or not isinstance(data.get("f"), dict):
                raise ValueError(f"unknown message type {data.get('$m')!r}")
            fields = {k: from_wire(v, decode_block) for k, v in data["f"].items()}
            try:
                return cls(**fields)
            except TypeError as exc:
                raise ValueError(f"malformed {data['$m']}: {exc}") from exc
        if "$b" in data:
            if not isinstance(data["$b"], bytes):
                raise ValueError("malformed block")
            return decode_block(data["$b"])
        return {k: from_wire(v, decode_block) for k, v in data.items()}
    if isinstance(data, list):
        return [from_wire(v, decode_block) for v in data]
    return data
