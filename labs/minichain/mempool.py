"""What waits to go into a block: signed Ethereum transactions and ChainMaker requests.

Both pools only hold what was admitted; the admission rules (signature, nonce, funds, endorsements)
live with the application in :mod:`labs.minichain.execution`, which owns the lock that guards them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from eth.abc import SignedTransactionAPI
from eth_typing import Address


class TxError(ValueError):
    """A transaction was refused at the mempool door; the message says why (and what to fix)."""


@dataclass(slots=True, eq=False)
class PendingTx:
    """A transaction waiting in the mempool, decoded once with its sender recovered once."""

    raw: bytes
    tx: SignedTransactionAPI
    hash: bytes
    sender: Address
    nonce: int


class Mempool:
    """Pending transactions in arrival order, with each sender's nonces kept gap-free.

    Because admission demands nonce = account nonce + pending count, arrival order already respects
    every sender's nonce order: building a block is one pass over the arrival order.
    """

    def __init__(self) -> None:
        self.by_hash: dict[bytes, PendingTx] = {}
        self.by_sender: dict[bytes, dict[int, PendingTx]] = {}

    def __len__(self) -> int:
        return len(self.by_hash)

    def add(self, p: PendingTx) -> None:
        self.by_hash[p.hash] = p
        self.by_sender.setdefault(p.sender, {})[p.nonce] = p

    def count(self, sender: bytes) -> int:
        return len(self.by_sender.get(sender, ()))

    def ordered(self) -> Iterator[PendingTx]:
        return iter(list(self.by_hash.values()))

    def remove(self, hashes: Sequence[bytes]) -> None:
        for h in hashes:
            p = self.by_hash.pop(h, None)
            if p is None:
                continue
            queue = self.by_sender[p.sender]
            del queue[p.nonce]
            if not queue:
                del self.by_sender[p.sender]

    def keep_valid(self, sender: bytes, nonce: int, balance: int) -> None:
        """Drop what can never run for ``sender`` now: used nonces, gaps, unaffordable costs."""
        queue = self.by_sender.get(sender)
        if not queue:
            return
        dropped: list[bytes] = []
        expected = nonce
        blocked = False
        for p in queue.values():
            if p.nonce < expected:
                dropped.append(p.hash)  # included in a block or replaced
            elif blocked or p.nonce != expected or max_cost(p.tx) > balance:
                blocked = True  # a gap or an unaffordable transaction blocks all after it
                dropped.append(p.hash)
            else:
                expected += 1
        self.remove(dropped)


def max_cost(tx: SignedTransactionAPI) -> int:
    """The most a transaction can cost its sender: gas limit times the highest price, plus value."""
    price = tx.max_fee_per_gas if tx.type_id == 2 else tx.gas_price
    return tx.gas * price + tx.value


class RequestPool:
    """Admitted ChainMaker requests by tx id, in arrival order.

    A ChainMaker request carries its own unique tx id and no nonce, so arrival order is the whole
    ordering; a request leaves the pool when a committed block carries it.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._by_id

    def __setitem__(self, tx_id: str, raw: bytes) -> None:
        self._by_id[tx_id] = bytes(raw)

    def get(self, tx_id: str) -> bytes | None:
        return self._by_id.get(tx_id)

    def ids(self) -> list[str]:
        """Every waiting request's tx id, oldest first."""
        return list(self._by_id)

    def first(self, limit: int) -> list[bytes]:
        """The oldest ``limit`` requests, for the next block."""
        return list(self._by_id.values())[:limit]

    def remove(self, tx_ids: Sequence[str]) -> None:
        for tx_id in tx_ids:
            self._by_id.pop(tx_id, None)
