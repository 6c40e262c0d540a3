"""The application of a minichain node: mempool, block building, validation and commit on py-evm.

Consensus decides *which* block comes next; this module decides *what a block means*. It is
what the node's :class:`~labs.minichain.consensus.base.Host` calls for ``create_block`` /
``validate_block`` / ``commit_block`` / ``committed_block`` / ``has_pending_transactions``, and what
the JSON-RPC layer reads (the read side is :class:`ReadApi`, mixed into :class:`ExecutionApp`).

Speed without shortcuts on correctness:

- a transaction is decoded and its sender recovered once, when it enters the mempool;
- a block executes once per node: the proposer keeps what it built, a validator keeps what it
  validated, and ``commit_block`` reuses that result (keyed by block hash);
- state trie nodes stay in memory until the block commits, then go to SQLite in the same
  transaction as the block and the head pointer.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import rlp
from eth.abc import (
    BlockHeaderAPI,
    ComputationAPI,
    LogAPI,
    ReceiptAPI,
    SignedTransactionAPI,
    StateAPI,
    UnsignedTransactionAPI,
)
from eth.chains.base import ChainContext
from eth.exceptions import OutOfGas, Revert
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth.vm.spoof import SpoofTransaction
from eth_abi import decode as decode_abi
from eth_bloom import BloomFilter
from eth_typing import Address
from eth_utils import ValidationError, keccak, to_checksum_address

from .blocks import (
    HEADER_CLASS,
    MAX_EXTRA_DATA,
    TX_BUILDER,
    VM,
    Executed,
    InvalidBlock,
    MiniBlock,
    RecentHeaders,
    base_fee,
    block_json,
    build_genesis,
    chain_id_problem,
    decode_receipts,
    decode_transaction,
    effective_gas_price,
    encode_receipts,
    execute,
    header_template,
    hex_data,
    hex_int,
    log_json,
    ordered_trie_root,
    receipt_json,
    tx_hash,
    tx_json,
)
from .consensus.base import Block
from .genesis import Genesis
from .storage import BlockRecord, Store, StoreError

SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


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


def _address(value: bytes | str) -> bytes:
    if isinstance(value, str):
        value = bytes.fromhex(value.removeprefix("0x"))
    if len(value) != 20:
        raise ValueError(f"an address is 20 bytes, got {len(value)}")
    return bytes(value)


BlockRef = int | str | bytes
"""A block named the JSON-RPC way: a number, a tag (latest, earliest, pending, safe, finalized) or
a 32-byte hash."""

Bundle = tuple[MiniBlock, list[ReceiptAPI], list[bytes]]
"""A committed block with its receipts and its transactions' senders, in transaction order."""

TAGS_AT_HEAD = ("latest", "pending", "safe", "finalized")
MAX_LOG_RANGE = 10_000
MAX_FEE_HISTORY = 1024
ERROR_SELECTOR = bytes.fromhex("08c379a0")
PANIC_SELECTOR = bytes.fromhex("4e487b71")


class QueryError(ValueError):
    """A read request cannot be answered; ``code`` is the JSON-RPC error code to report."""

    def __init__(self, message: str, code: int = -32000) -> None:
        super().__init__(message)
        self.code = code


class ExecutionReverted(Exception):
    """A call or estimate hit REVERT: ``data`` holds the revert bytes, the message the reason."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        reason = revert_reason(self.data)
        super().__init__("execution reverted" + (f": {reason}" if reason else ""))


def revert_reason(data: bytes) -> str | None:
    """The reason in ``Error(string)`` revert data (or a Panic code), None when there is none."""
    if data[:4] == ERROR_SELECTOR:
        try:
            return decode_abi(["string"], data[4:])[0]
        except Exception:  # malformed Error(string): report no reason rather than fail the call
            return None
    if data[:4] == PANIC_SELECTOR and len(data) == 36:
        return f"panic code 0x{int.from_bytes(data[4:], 'big'):x}"
    return None


@dataclass
class CallRequest:
    """The transaction object of ``eth_call`` / ``eth_estimateGas`` with its fields parsed."""

    sender: Address
    to: Address
    gas: int | None
    gas_price: int | None
    max_fee: int | None
    max_priority_fee: int | None
    value: int
    data: bytes

    @classmethod
    def parse(cls, obj: object) -> CallRequest:
        """Parse the JSON-RPC dict; ValueError names the field that is wrong."""
        if not isinstance(obj, dict):
            raise ValueError('the transaction must be an object like {"to": "0x..", ...}')

        def quantity(name: str) -> int | None:
            v = obj.get(name)
            if v is None:
                return None
            limit = 2**64 if name == "gas" else 2**256
            if isinstance(v, str) and v.startswith(("0x", "0X")):
                with contextlib.suppress(ValueError):
                    v = int(v, 16)
            if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < limit:
                return v
            raise ValueError(f'field {name!r} must be a hex quantity like "0x1", got {v!r}')

        def data(name: str) -> bytes | None:
            v = obj.get(name)
            if v is None:
                return None
            if isinstance(v, str) and v.startswith(("0x", "0X")):
                try:
                    return bytes.fromhex(v[2:])
                except ValueError:
                    pass
            raise ValueError(f"field {name!r} must be 0x-prefixed hex bytes, got {str(v)[:40]!r}")

        sender = data("from") or bytes(20)
        to = data("to") or b""
        for name, value in (("from", sender), ("to", to)):
            if value and len(value) != 20:
                raise ValueError(f"field {name!r} must be a 20-byte address")
        payload = data("input")
        if payload is None:
            payload = data("data") or b""
        return cls(
            sender=Address(sender),
            to=Address(to),
            gas=quantity("gas"),
            gas_price=quantity("gasPrice"),
            max_fee=quantity("maxFeePerGas"),
            max_priority_fee=quantity("maxPriorityFeePerGas"),
            value=quantity("value") or 0,
            data=payload,
        )

    @property
    def priced(self) -> bool:
        return bool(self.gas_price or self.max_fee)


class ReadApi:
    """The read side of the application (what JSON-RPC serves); mixed into ExecutionApp."""

    store: Store
    head: MiniBlock
    mempool: Mempool
    chain_id: int
    genesis: Genesis
    suggested_tip: int
    _lock: threading.RLock
    _context: ChainContext
    _chain: RecentHeaders

    def __init__(self) -> None:
        self._headers: dict[int, BlockHeaderAPI] = {}
        self._bundles: dict[int, Bundle] = {}

    def head_state(self) -> StateAPI:  # provided by ExecutionApp
        raise NotImplementedError

    def _state_for(self, header: BlockHeaderAPI) -> StateAPI:  # provided by ExecutionApp
        raise NotImplementedError

    # --- caches --------------------------------------------------------------------------------

    def _headers_cache_put(self, height: int, header: BlockHeaderAPI) -> None:
        if len(self._headers) > 4096:
            self._headers.clear()
        self._headers[height] = header

    def _bundle_cache_put(self, height: int, bundle: Bundle) -> None:
        if len(self._bundles) > 16:  # a 1000-transaction block with receipts is megabytes
            self._bundles.clear()
        self._bundles[height] = bundle

    def _load_header(self, block_hash: bytes) -> BlockHeaderAPI | None:
        encoded = self.store.header_by_hash(block_hash)
        return None if encoded is None else rlp.decode(encoded, sedes=HEADER_CLASS)

    def header_at(self, height: int) -> BlockHeaderAPI | None:
        header = self._headers.get(height)
        if header is None:
            encoded = self.store.header_at(height)
            if encoded is None:
                return None
            header = rlp.decode(encoded, sedes=HEADER_CLASS)
            self._headers_cache_put(height, header)
        return header

    def bundle(self, height: int) -> Bundle | None:
        """(block, receipts, senders) of a committed block."""
        found = self._bundles.get(height)
        if found is None:
            stored = self.store.block_at(height)
            extras = self.store.receipts_at(height)
            if stored is None or extras is None:
                return None
            receipts, senders = extras
            found = (
                MiniBlock.decode(stored[0]),
                decode_receipts(receipts),
                [senders[i : i + 20] for i in range(0, len(senders), 20)],
            )
            self._bundle_cache_put(height, found)
        return found

    def _committed_bundle(self, height: int) -> Bundle:
        """The bundle of a height the store lists as committed (missing only if it is damaged)."""
        found = self.bundle(height)
        if found is None:
            raise StoreError(f"block {height} is committed but its body or receipts are missing")
        return found

    # --- blocks by reference -------------------------------------------------------------------

    def resolve_height(self, ref: BlockRef) -> int | None:
        """The height a block reference names, None when there is no such block."""
        head = self.head.height
        if isinstance(ref, bool):
            return None
        if isinstance(ref, int):
            return ref if 0 <= ref <= head else None
        if isinstance(ref, bytes):
            return self.store.height_of(ref)
        if ref in TAGS_AT_HEAD:
            return head
        if ref == "earliest":
            return 0
        raise QueryError(
            f"unknown block tag {ref!r}: use a number, a hash, latest, earliest, pending, safe "
            "or finalized",
            -32602,
        )

    def _state_at(self, ref: BlockRef) -> StateAPI:
        height = self.resolve_height(ref)
        if height is None:
            raise QueryError("header not found")
        if height == self.head.height:
            return self.head_state()
        header = self.header_at(height)
        if header is None:
            raise QueryError("header not found")
        return self._state_for(header)

    def get_balance(self, address: bytes, block: BlockRef = "latest") -> int:
        with self._lock:
            return self._state_at(block).get_balance(Address(address))

    def get_nonce(self, address: bytes, block: BlockRef = "latest") -> int:
        """The account nonce; at "pending" it counts the sender's transactions in the mempool."""
        with self._lock:
            nonce = self._state_at(block).get_nonce(Address(address))
            if block == "pending":
                nonce += self.mempool.count(bytes(address))
            return nonce

    def get_code(self, address: bytes, block: BlockRef = "latest") -> bytes:
        with self._lock:
            return self._state_at(block).get_code(Address(address))

    def get_storage_at(self, address: bytes, slot: int, block: BlockRef = "latest") -> bytes:
        with self._lock:
            return self._state_at(block).get_storage(Address(address), slot).to_bytes(32, "big")

    # --- calls ---------------------------------------------------------------------------------

    def _run(self, req: CallRequest, header: BlockHeaderAPI, gas: int) -> ComputationAPI:
        """Execute ``req`` on a throwaway state on top of ``header`` (nothing is persisted)."""
        if not req.priced:
            header = header.copy(base_fee_per_gas=0)  # unpriced calls pay nothing, as in geth
        state = VM.build_state(
            self.store.atomic_db,
            header,
            self._context,
            VM.get_prev_hashes(header.parent_hash, self._chain.as_chaindb()) or (),
        )
        nonce = state.get_nonce(req.sender)
        unsigned: UnsignedTransactionAPI
        if req.max_fee is not None or req.max_priority_fee is not None:
            max_fee = req.max_fee if req.max_fee is not None else base_fee(header)
            tip = req.max_priority_fee if req.max_priority_fee is not None else 0
            unsigned = TX_BUILDER.new_unsigned_dynamic_fee_transaction(
                self.chain_id,
                nonce,
                min(tip, max_fee),
                max_fee,
                gas,
                req.to,
                req.value,
                req.data,
                [],
            )
        else:
            unsigned = TX_BUILDER.create_unsigned_transaction(
                nonce=nonce,
                gas_price=req.gas_price or 0,
                gas=gas,
                to=req.to,
                value=req.value,
                data=req.data,
            )
        # cast: a SpoofTransaction stands in for a signed one by forwarding every attribute to
        # ``unsigned`` except the sender it is given; py-evm's own gas estimator casts it the same.
        spoofed = cast(SignedTransactionAPI, SpoofTransaction(unsigned, from_=req.sender))
        try:
            return state.apply_transaction(spoofed)
        except ValidationError as exc:
            raise QueryError(_call_validation_message(str(exc), req)) from exc

    def _call_header(self, block: BlockRef) -> BlockHeaderAPI:
        height = self.resolve_height(block)
        if height is None:
            raise QueryError("header not found")
        header = self.header_at(height)
        if header is None:
            raise QueryError("header not found")
        return header

    def call(self, tx: object, block: BlockRef = "latest") -> bytes:
        """``eth_call``: the return data, or ExecutionReverted / QueryError."""
        req = CallRequest.parse(tx)
        with self._lock:
            header = self._call_header(block)
            gas = req.gas if req.gas is not None else header.gas_limit
            computation = self._run(req, header, gas)
        if computation.is_error:
            if isinstance(computation.error, Revert):
                raise ExecutionReverted(computation.output)
            raise QueryError(_vm_error(computation.error))
        return computation.output

    def estimate_gas(self, tx: object, block: BlockRef = "latest") -> int:
        """``eth_estimateGas``: the least gas (within 1.5 %) with which the transaction succeeds."""
        req = CallRequest.parse(tx)
        with self._lock:
            header = self._call_header(block)
            hi = req.gas if req.gas is not None else header.gas_limit
            price = req.max_fee or req.gas_price or 0
            if price:
                balance = self._state_for(header).get_balance(req.sender)
                hi = min(hi, max(balance - req.value, 0) // price)
            first = self._run(req, header, hi)
            if first.is_error:
                if isinstance(first.error, Revert):
                    raise ExecutionReverted(first.output)
                if isinstance(first.error, OutOfGas):
                    raise QueryError(f"gas required exceeds allowance ({hi})")
                raise QueryError(_vm_error(first.error))
            used = hi - first.get_gas_remaining()
            if not req.data and req.to and not self._state_for(header).get_code(req.to):
                return used  # a plain transfer costs exactly its intrinsic gas
            lo = used - 1

            def succeeds(gas: int) -> bool:
                return not self._run(req, header, gas).is_error

            optimistic = (used + first.get_gas_refund() + 2300) * 64 // 63
            if optimistic < hi:
                if succeeds(optimistic):
                    hi = optimistic
                else:
                    lo = optimistic
            while hi - lo > 1 and (hi - lo) * 1000 > hi * 15:
                mid = (hi + lo) // 2
                if succeeds(mid):
                    hi = mid
                else:
                    lo = mid
            return hi

    # --- blocks, transactions, receipts --------------------------------------------------------

    def block(self, ref: BlockRef, full: bool = False) -> dict | None:
        """A block in JSON-RPC shape, transactions as hashes or (``full``) objects."""
        with self._lock:
            height = self.resolve_height(ref)
            found = None if height is None else self.bundle(height)
        if found is None:
            return None
        block, _, senders = found
        txs = block.evm.transactions
        shaped: list[dict[str, Any]] | list[str]
        if full:
            shaped = [tx_json(tx, senders[i], tx_hash(tx), block, i) for i, tx in enumerate(txs)]
        else:
            shaped = [hex_data(tx_hash(tx)) for tx in txs]
        return block_json(block, shaped)

    def block_tx_count(self, ref: BlockRef) -> int | None:
        with self._lock:
            height = self.resolve_height(ref)
            found = None if height is None else self.bundle(height)
        return None if found is None else len(found[0].evm.transactions)

    def transaction_at(self, ref: BlockRef, index: int) -> dict | None:
        with self._lock:
            height = self.resolve_height(ref)
            found = None if height is None else self.bundle(height)
        if found is None or not 0 <= index < len(found[0].evm.transactions):
            return None
        block, _, senders = found
        tx = block.evm.transactions[index]
        return tx_json(tx, senders[index], tx_hash(tx), block, index)

    def transaction(self, h: bytes) -> dict | None:
        """A committed or pending transaction by hash."""
        with self._lock:
            pending = self.mempool.by_hash.get(bytes(h))
            if pending is not None:
                return tx_json(pending.tx, pending.sender, pending.hash, None, None)
            where = self.store.tx_location(bytes(h))
            if where is None:
                return None
        return self.transaction_at(where[0], where[1])

    def receipt(self, h: bytes) -> dict | None:
        with self._lock:
            where = self.store.tx_location(bytes(h))
            found = None if where is None else self.bundle(where[0])
        if found is None or where is None:
            return None
        block, receipts, senders = found
        index = where[1]
        first_log = sum(len(r.logs) for r in receipts[:index])
        return receipt_json(block, receipts, senders, index, first_log)

    # --- logs ----------------------------------------------------------------------------------

    def logs(
        self,
        from_block: BlockRef = "latest",
        to_block: BlockRef = "latest",
        addresses: Sequence[bytes] = (),
        topics: Sequence[None | bytes | Sequence[bytes]] = (),
        block_hash: bytes | None = None,
    ) -> list[dict]:
        """``eth_getLogs``: addresses OR-ed; topics by position, None = any, a list = any of."""
        with self._lock:
            first: int | None
            last: int | None
            if block_hash is not None:
                height = self.store.height_of(block_hash)
                if height is None:
                    raise QueryError("unknown block hash")
                first = last = height
            else:
                first = self.resolve_height(from_block)
                last = self.resolve_height(to_block)
                head = self.head.height
                if first is None:
                    first = head + 1 if isinstance(from_block, int) else 0
                if last is None:
                    last = head
                if first > last:
                    return []
                if last - first >= MAX_LOG_RANGE:
                    raise QueryError(
                        f"block range {first}..{last} is too large: ask for at most "
                        f"{MAX_LOG_RANGE} blocks at a time",
                        -32602,
                    )
            wanted_addresses = {bytes(a) for a in addresses}
            positions: list[set[int] | None] = []
            for t in topics:
                if t is None:
                    positions.append(None)
                elif isinstance(t, bytes):
                    positions.append({int.from_bytes(t, "big")})
                else:
                    positions.append({int.from_bytes(x, "big") for x in t} if t else None)
            heights = [
                height
                for height, bloom in self.store.blooms(first, last)
                if _bloom_may_match(bloom, wanted_addresses, topics)
            ]
            out: list[dict] = []
            for height in heights:
                block, receipts, _ = self._committed_bundle(height)
                log_index = 0
                for i, receipt in enumerate(receipts):
                    h = None
                    for log in receipt.logs:
                        if _log_matches(log, wanted_addresses, positions):
                            h = h or tx_hash(block.evm.transactions[i])
                            out.append(log_json(log, block, h, i, log_index))
                        log_index += 1
            return out

    # --- fees ----------------------------------------------------------------------------------

    def next_base_fee(self) -> int:
        return calculate_expected_base_fee_per_gas(self.head.header)

    def gas_price(self) -> int:
        """``eth_gasPrice``: next block's base fee plus the suggested tip."""
        return self.next_base_fee() + self.suggested_tip

    def max_priority_fee(self) -> int:
        return self.suggested_tip

    def fee_history(self, count: int, newest: BlockRef, percentiles: Sequence[float] = ()) -> dict:
        """``eth_feeHistory`` over the ``count`` blocks ending at ``newest``."""
        if any(not 0 <= p <= 100 for p in percentiles) or list(percentiles) != sorted(percentiles):
            raise QueryError("reward percentiles must be increasing numbers from 0 to 100", -32602)
        with self._lock:
            last = self.resolve_height(newest)
            if last is None:
                raise QueryError("header not found")
            count = max(0, min(count, MAX_FEE_HISTORY, last + 1))
            first = last - count + 1
            base_fees: list[str] = []
            ratios: list[float] = []
            rewards: list[list[str]] = []
            for height in range(first, last + 1):
                header = self.header_at(height)
                assert header is not None
                base_fees.append(hex_int(base_fee(header)))
                ratios.append(header.gas_used / header.gas_limit)
                if percentiles:
                    rewards.append([hex_int(r) for r in self._rewards(height, percentiles)])
            if count:
                following = self.header_at(last + 1)
                if following is not None:
                    base_fees.append(hex_int(base_fee(following)))
                else:
                    newest_header = self.header_at(last)
                    assert newest_header is not None  # ``last`` was resolved to a committed block
                    base_fees.append(hex_int(calculate_expected_base_fee_per_gas(newest_header)))
        out: dict = {
            "oldestBlock": hex_int(first),
            "baseFeePerGas": base_fees,
            "gasUsedRatio": ratios,
        }
        if percentiles:
            out["reward"] = rewards
        return out

    def _rewards(self, height: int, percentiles: Sequence[float]) -> list[int]:
        block, receipts, _ = self._committed_bundle(height)
        base = base_fee(block.header)
        spent: list[tuple[int, int]] = []
        previous = 0
        for tx, receipt in zip(block.evm.transactions, receipts, strict=True):
            spent.append((effective_gas_price(tx, base) - base, receipt.gas_used - previous))
            previous = receipt.gas_used
        if not spent:
            return [0 for _ in percentiles]
        spent.sort()
        total = sum(g for _, g in spent)
        out: list[int] = []
        for p in percentiles:
            threshold, acc, i = total * p / 100, 0, 0
            while i < len(spent) - 1 and acc + spent[i][1] < threshold:
                acc += spent[i][1]
                i += 1
            out.append(spent[i][0])
        return out


def _call_validation_message(message: str, req: CallRequest) -> str:
    if "balance" in message.lower() or "afford" in message.lower():
        return (
            f"insufficient funds for gas * price + value: address "
            f"{to_checksum_address(req.sender)} ({message})"
        )
    return message


def _vm_error(error: BaseException) -> str:
    if isinstance(error, OutOfGas):
        return "out of gas"
    name = type(error).__name__
    text = str(error)
    return f"{name}: {text}" if text else name


def _bloom_may_match(
    bloom: bytes, addresses: set[bytes], topics: Sequence[None | bytes | Sequence[bytes]]
) -> bool:
    f = BloomFilter(int.from_bytes(bloom, "big"))
    if addresses and not any(a in f for a in addresses):
        return False
    for t in topics:
        if t is None or (not isinstance(t, bytes) and not t):
            continue
        options = [t] if isinstance(t, bytes) else list(t)
        if not any(bytes(o) in f for o in options):
            return False
    return True


def _log_matches(log: LogAPI, addresses: set[bytes], positions: list[set[int] | None]) -> bool:
    if addresses and log.address not in addresses:
        return False
    topics = log.topics
    if len(positions) > len(topics):
        return False
    return all(want is None or topics[i] in want for i, want in enumerate(positions))


class ExecutionApp(ReadApi):
    """One node's application state: the committed chain plus the mempool."""

    def __init__(
        self,
        store: Store,
        genesis: Genesis,
        *,
        max_txs_per_block: int = 1000,
        mempool_limit: int = 50_000,
        suggested_tip: int = 10**9,
        max_future_seconds: int = 15,
    ) -> None:
        self.store = store
        self.max_future_seconds = max_future_seconds
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.max_txs_per_block = max_txs_per_block
        self.mempool_limit = mempool_limit
        self.suggested_tip = suggested_tip
        self.mempool = Mempool()
        self._lock = threading.RLock()
        self._context = ChainContext(self.chain_id)
        self._chain = RecentHeaders(store.atomic_db, self._load_header)
        self._executed: dict[bytes, Executed] = {}
        self._rejected: dict[bytes, str] = {}
        self.chainmaker: Any = None
        """The ChainMaker request runner when the genesis configures ChainMaker's orgs."""
        self.cm_pool: dict[str, bytes] = {}
        """Admitted ChainMaker requests by tx id, in arrival order."""
        if genesis.chainmaker is not None:
            from .chainmaker.executor import Executor

            self.chainmaker = Executor(genesis.chainmaker)
        self.executions = 0
        """How many times a block was executed (build or validate): commit never adds one."""
        super().__init__()
        head = store.head_height()
        genesis_block = build_genesis(store.atomic_db, genesis)
        if head is None:
            self._commit_executed(Executed(genesis_block, (), (), ()), b"", genesis_block.hash)
        else:
            stored = store.genesis_hash()
            if stored != genesis_block.hash:
                raise StoreError(
                    f"{store.path} holds another chain (genesis 0x{(stored or b'').hex()[:16]}, "
                    f"this genesis.json gives 0x{genesis_block.hash.hex()[:16]}): use the genesis "
                    "it was created with, or a fresh data folder"
                )
            stored_head = store.block_at(head)
            if stored_head is None:
                raise StoreError(
                    f"{store.path} names block {head} as its head but does not hold it"
                )
            self._set_head(MiniBlock.decode(stored_head[0]))

    # --- consensus host calls ------------------------------------------------------------------

    def committed_height(self) -> int:
        return self.head.height

    def committed_block(self, height: int) -> tuple[MiniBlock, bytes] | None:
        """A committed block with the proof it was committed with (for peers catching up)."""
        found = self.store.block_at(height)
        if found is None:
            return None
        return MiniBlock.decode(found[0]), found[1]

    @staticmethod
    def decode_block(data: bytes) -> MiniBlock:
        return MiniBlock.decode(data)

    def has_pending(self) -> bool:
        return len(self.mempool) > 0 or bool(self.cm_pool)

    has_pending_transactions = has_pending

    def pending_count(self) -> int:
        return len(self.mempool)

    def check_tx(self, raw: bytes) -> bytes:
        """Admit a signed transaction to the mempool and return its hash, or raise TxError."""
        raw = bytes(raw)
        h = keccak(raw)
        with self._lock:
            if h in self.mempool.by_hash or self.store.tx_location(h) is not None:
                raise TxError("already known")
            try:
                tx = decode_transaction(raw)
            except ValueError as exc:
                raise TxError(f"{exc}: send the raw signed bytes (rawTransaction)") from exc
            problem = chain_id_problem(tx, self.chain_id)
            if problem is not None:
                raise TxError(problem)
            sender = self._recover_sender(tx)
            self._check_gas_and_fees(tx)
            state = self.head_state()
            nonce = state.get_nonce(sender)
            expected = nonce + self.mempool.count(sender)
            if tx.nonce < nonce:
                raise TxError(
                    f"nonce too low: account {to_checksum_address(sender)} has nonce {nonce}, "
                    f"transaction has {tx.nonce}"
                )
            if tx.nonce < expected:
                raise TxError(
                    f"nonce {tx.nonce} is already used by a pending transaction of "
                    f"{to_checksum_address(sender)}: wait for it, then send nonce {expected}"
                )
            if tx.nonce > expected:
                raise TxError(
                    f"nonce too high: expected {expected} (account nonce plus pending), "
                    f"got {tx.nonce}"
                )
            balance = state.get_balance(sender)
            need = max_cost(tx)
            if need > balance:
                raise TxError(
                    f"insufficient funds for gas * price + value: balance {balance}, need {need}"
                )
            if len(self.mempool) >= self.mempool_limit:
                raise TxError(
                    f"mempool is full ({len(self.mempool)} transactions): "
                    "resend after the next block"
                )
            self.mempool.add(PendingTx(raw, tx, h, sender, tx.nonce))
        return h

    def check_cm(self, raw: bytes) -> Any:
        """Admit a ChainMaker TxRequest to the pool (``Admitted``), or raise RequestRefused."""
        from .chainmaker.executor import RequestRefused

        if self.chainmaker is None:
            raise RequestRefused("INVALID_PARAMETER", "this chain has no ChainMaker configuration")
        admitted = self.chainmaker.admit(bytes(raw), state=self.head_state())
        with self._lock:
            if admitted.tx_id in self.cm_pool or self.store.cm_tx(admitted.tx_id) is not None:
                raise RequestRefused("INVALID_PARAMETER", f"tx {admitted.tx_id} is duplicate")
            if len(self.cm_pool) >= self.mempool_limit:
                raise RequestRefused(
                    "INTERNAL_ERROR", "TxPool is full: resend after the next block"
                )
            self.cm_pool[admitted.tx_id] = bytes(raw)
        return admitted

    def build_block(
        self,
        height: int,
        proposer_coinbase: bytes | str,
        now: float,
        extra: bytes = b"",
        variant: int = 0,
    ) -> MiniBlock:
        """Build the next block from pending transactions (arrival order, nonce order per sender).

        Transactions that fail (nonce gap, funds, base fee, gas left) are skipped, not dropped.
        ``variant`` only changes ``extra_data``: a byzantine test uses it to make a second,
        different block at the same height.
        """
        with self._lock:
            parent = self.head.header
            if height != parent.block_number + 1:
                raise ValueError(
                    f"can only build block {parent.block_number + 1} on the committed head, "
                    f"asked for {height}"
                )
            extra_data = bytes(extra) + (f"/{variant}".encode() if variant else b"")
            if len(extra_data) > MAX_EXTRA_DATA:
                raise ValueError(
                    f"extra data is {len(extra_data)} bytes; "
                    f"a header holds at most {MAX_EXTRA_DATA}"
                )
            template = header_template(
                parent,
                coinbase=_address(proposer_coinbase),
                timestamp=max(int(now), parent.timestamp + 1),
                gas_limit=self.genesis.gas_limit,
                extra_data=extra_data,
            )
            candidates = ((p.tx, p.hash) for p in self.mempool.ordered())
            cm = list(self.cm_pool.values())[: self.max_txs_per_block]
            self.executions += 1
            ex = execute(
                self._chain,
                template,
                candidates,
                self.chain_id,
                strict=False,
                max_txs=self.max_txs_per_block,
                chainmaker=(self.chainmaker, cm) if cm else None,
            )
            self._remember(ex)
            return ex.block

    def validate_block(self, block: Block) -> bool:
        """True when ``block`` is a valid next block on top of the committed head."""
        return self.why_invalid(block) is None

    def why_invalid(self, block: Block) -> str | None:
        """None for a valid next block, else one line saying what is wrong with it."""
        if not isinstance(block, MiniBlock):
            try:
                block = MiniBlock.decode(block.encode())
            except (ValueError, AttributeError) as exc:
                return f"not a minichain block: {exc}"
        with self._lock:
            head = self.head.header
            if self._cached(block) is not None:
                return None
            digest = keccak(block.encode())  # the body too: a header can be paired with junk
            if digest in self._rejected:
                return self._rejected[digest]
            reason = self._check_header(block, head)
            if reason is None:
                try:
                    reason = self._reexecute(block, head)
                except InvalidBlock as exc:
                    reason = str(exc)
            if reason is not None:
                if len(self._rejected) > 256:
                    self._rejected.clear()
                self._rejected[digest] = reason
            return reason

    def commit_block(self, block: MiniBlock, proof: bytes = b"") -> None:
        """Make ``block`` final: persist it with its state and the new head in one transaction."""
        if proof is None:
            proof = b""
        if not isinstance(proof, bytes | bytearray):
            raise TypeError("proof must be bytes: encode it (e.g. msgpack) before commit_block")
        with self._lock:
            if block.height != self.head.height + 1:
                raise ValueError(
                    f"cannot commit block {block.height}: the committed head is {self.head.height}"
                )
            ex = self._cached(block)
            if ex is None:
                reason = self.why_invalid(block)
                if reason is not None:
                    raise InvalidBlock(f"refusing to commit block {block.height}: {reason}")
                ex = self._executed[block.hash]
            self._commit_executed(ex, bytes(proof), None)

    # --- internals -----------------------------------------------------------------------------

    def _recover_sender(self, tx: SignedTransactionAPI) -> Address:
        if not (0 < tx.r < 2**256 and 0 < tx.s <= SECP256K1_HALF_N):
            raise TxError("invalid signature: r or s out of range (s must be in the lower half)")
        try:
            return tx.sender
        except Exception as exc:  # eth-keys raises several types for a signature it cannot use
            raise TxError(f"invalid signature: {exc}") from exc

    def _check_gas_and_fees(self, tx: SignedTransactionAPI) -> None:
        if tx.gas < tx.intrinsic_gas:
            raise TxError(f"intrinsic gas too low: gas {tx.gas}, minimum needed {tx.intrinsic_gas}")
        if tx.gas > self.genesis.gas_limit:
            raise TxError(
                f"exceeds block gas limit: gas {tx.gas}, block gas limit {self.genesis.gas_limit}"
            )
        base_fee = calculate_expected_base_fee_per_gas(self.head.header)
        if tx.type_id == 2:
            if tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
                raise TxError(
                    f"max priority fee per gas higher than max fee per gas: "
                    f"{tx.max_priority_fee_per_gas} > {tx.max_fee_per_gas}"
                )
            if tx.max_fee_per_gas < base_fee:
                raise TxError(
                    f"max fee per gas less than block base fee: maxFeePerGas "
                    f"{tx.max_fee_per_gas}, baseFee {base_fee}"
                )
        elif tx.gas_price < base_fee:
            raise TxError(
                f"gas price less than block base fee: gasPrice {tx.gas_price}, baseFee {base_fee}"
            )
        try:
            tx.validate()
        except Exception as exc:  # py-evm field checks (ranges, sizes)
            raise TxError(f"invalid transaction: {exc}") from exc

    def _check_header(self, block: MiniBlock, head: BlockHeaderAPI) -> str | None:
        h = block.header
        if h.block_number != head.block_number + 1:
            return f"block {h.block_number} does not follow the committed head {head.block_number}"
        if h.parent_hash != head.hash:
            return (
                f"parent is 0x{h.parent_hash.hex()[:16]}, the committed head is "
                f"0x{head.hash.hex()[:16]}"
            )
        if h.timestamp <= head.timestamp:
            return f"timestamp {h.timestamp} is not after the parent's {head.timestamp}"
        latest_fair = max(int(time.time()), head.timestamp) + self.max_future_seconds
        if h.timestamp > latest_fair:  # honest proposers use max(now, parent + 1)
            return f"timestamp {h.timestamp} is more than {self.max_future_seconds}s in the future"
        if h.gas_limit != self.genesis.gas_limit:
            return f"gas limit {h.gas_limit} differs from the genesis gas limit"
        if len(h.extra_data) > MAX_EXTRA_DATA:
            return f"extra data is {len(h.extra_data)} bytes, at most {MAX_EXTRA_DATA} allowed"
        if block.evm.uncles or block.evm.withdrawals:
            return "blocks carry no uncles and no withdrawals"
        return None

    def _reexecute(self, block: MiniBlock, head: BlockHeaderAPI) -> str | None:
        h = block.header
        txs = block.evm.transactions
        body_root = ordered_trie_root([tx.encode() for tx in txs])
        if body_root != h.transaction_root:
            return (
                f"transaction_root mismatch: the header says 0x{h.transaction_root.hex()}, "
                f"the {len(txs)} transactions in the block give 0x{body_root.hex()}"
            )
        if block.cm and self.chainmaker is None:
            return "the block carries ChainMaker requests but this chain has no ChainMaker config"
        if len(block.cm) > self.max_txs_per_block:
            return f"the block carries {len(block.cm)} ChainMaker requests, over the limit"
        if block.cm:
            reason = self._cm_replayed(block.cm)
            if reason is not None:
                return reason
        template = header_template(head, h.coinbase, h.timestamp, h.gas_limit, h.extra_data)
        self.executions += 1
        ex = execute(
            self._chain,
            template,
            ((tx, tx_hash(tx)) for tx in txs),
            self.chain_id,
            strict=True,
            chainmaker=(self.chainmaker, block.cm) if block.cm else None,
        )
        mine = ex.block.header
        if mine.hash != h.hash:
            for name, _ in HEADER_CLASS._meta.fields:
                if getattr(mine, name) != getattr(h, name):
                    ours, theirs = getattr(mine, name), getattr(h, name)
                    show = (lambda v: "0x" + v.hex()) if isinstance(ours, bytes) else str
                    return (
                        f"{name} mismatch: block has {show(theirs)}, execution gives {show(ours)}"
                    )
            return "header mismatch after execution"
        self._remember(
            Executed(
                block,
                ex.receipts,
                ex.senders,
                ex.tx_hashes,
                ex.touched,
                cm_results=ex.cm_results,
            )
        )
        return None

    def _cm_replayed(self, requests: Sequence[bytes]) -> str | None:
        """A block may carry a ChainMaker request once, and never one an earlier block did."""
        from .chainmaker.executor import RequestRefused

        seen: set[str] = set()
        for raw in requests:
            try:
                request, _ = self.chainmaker.parse(raw)
            except RequestRefused:
                continue  # runs as a failed request, recorded like any other
            tx_id = request.payload.tx_id
            if tx_id in seen or self.store.cm_tx(tx_id) is not None:
                return f"ChainMaker request {tx_id} is already on the chain (a replay)"
            seen.add(tx_id)
        return None

    def _cached(self, block: MiniBlock) -> Executed | None:
        """The execution result of exactly this block on the current head, if we have one.

        The hash covers the header only, so the body is compared too: a peer could pair a known
        header with other transactions.
        """
        ex = self._executed.get(block.hash)
        if ex is None or ex.block.parent_hash != self.head.hash:
            return None
        if ex.block is not block and ex.block.encode() != block.encode():
            return None
        return ex

    def _remember(self, ex: Executed) -> None:
        if len(self._executed) > 32:  # only candidates for the next height matter; bound the rest
            self._executed.clear()
        self._executed[ex.block.hash] = ex

    def _commit_executed(self, ex: Executed, proof: bytes, genesis_hash: bytes | None) -> None:
        block = ex.block
        record = BlockRecord(
            height=block.height,
            hash=block.hash,
            header=rlp.encode(block.header),
            body=block.encode(),
            proof=proof,
            bloom=block.header.bloom.to_bytes(256, "big"),
            receipts=encode_receipts(ex.receipts),
            senders=b"".join(ex.senders),
            tx_hashes=ex.tx_hashes,
            cm_results=ex.cm_results,
        )
        self.store.commit_block(record, genesis_hash)
        for tx_id, _ in ex.cm_results:
            self.cm_pool.pop(tx_id, None)
        self._set_head(block)
        self._bundle_cache_put(block.height, (block, list(ex.receipts), list(ex.senders)))
        self._executed = {k: v for k, v in self._executed.items() if v.block.height > block.height}
        self._rejected.clear()
        self.mempool.remove(ex.tx_hashes)
        if self.mempool.by_sender:
            state = self.head_state()
            check = set(ex.senders) | set(ex.touched)
            for sender in [Address(s) for s in self.mempool.by_sender if s in check]:
                self.mempool.keep_valid(sender, state.get_nonce(sender), state.get_balance(sender))

    def _set_head(self, block: MiniBlock) -> None:
        self.head = block
        self._chain.add(block.header)
        self._head_state: StateAPI | None = None
        self._headers_cache_put(block.height, block.header)

    def head_state(self) -> StateAPI:
        """Read-only state at the committed head (one object, reused until the next commit)."""
        if self._head_state is None:
            self._head_state = self._state_for(self.head.header)
        return self._head_state

    def _state_for(self, header: BlockHeaderAPI) -> StateAPI:
        return VM.build_state(self.store.atomic_db, header, self._context, ())


# -------------------------------------------------------------------------------------------------
# The anchor for bench/chain_tps.py
# -------------------------------------------------------------------------------------------------


def raw_apply_rate(genesis: Genesis, raw_txs: Sequence[bytes], block_size: int) -> float:
    """Transactions per second that plain py-evm reaches applying ``raw_txs`` in blocks of
    ``block_size`` on a fresh in-memory chain with the genesis alloc (decoding included).

    This is the anchor the chain's end-to-end throughput is compared with: what the EVM library
    alone does, with no mempool, consensus, network or disk.
    """
    from eth.chains.base import MiningChain
    from eth.db.atomic import AtomicDB
    from eth.typing import HeaderParams

    from .blocks import TX_BUILDER, genesis_accounts

    chain_class = MiningChain.configure(vm_configuration=((0, VM),), chain_id=genesis.chain_id)
    params: dict[str, HeaderParams] = {
        "difficulty": 0,
        "gas_limit": genesis.gas_limit,
        "timestamp": genesis.timestamp,
        "base_fee_per_gas": genesis.base_fee_per_gas,
    }
    chain = chain_class.from_genesis(AtomicDB(), params, genesis_accounts(genesis))
    assert isinstance(chain, MiningChain)  # from_genesis builds a chain_class, typed as BaseChain
    started = time.perf_counter()
    txs = [TX_BUILDER.decode(raw) for raw in raw_txs]
    timestamp = genesis.timestamp
    for i in range(0, len(txs), block_size):
        timestamp += 1
        chain.mine_all(txs[i : i + block_size], timestamp=timestamp)
    elapsed = time.perf_counter() - started
    return len(txs) / elapsed if elapsed > 0 else float("inf")
