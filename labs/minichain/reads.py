"""The read side of a minichain node: state, calls, blocks, receipts, logs and fees at any height.

It answers from what the application committed and never changes it, so it is an object of its own
that :class:`~labs.minichain.execution.ExecutionApp` composes (``app.reads``), reaching the app only
through the narrow :class:`ChainView`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

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
from eth_utils import ValidationError, to_checksum_address

from .blocks import (
    HEADER_CLASS,
    TX_BUILDER,
    VM,
    MiniBlock,
    RecentHeaders,
    base_fee,
    block_json,
    decode_receipts,
    effective_gas_price,
    hex_data,
    hex_int,
    log_json,
    receipt_json,
    tx_hash,
    tx_json,
)
from .mempool import Mempool
from .storage import Store, StoreError

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


class ChainView(Protocol):
    """What the read side needs of the application that commits blocks."""

    @property
    def store(self) -> Store: ...
    @property
    def mempool(self) -> Mempool: ...
    @property
    def chain_id(self) -> int: ...
    @property
    def suggested_tip(self) -> int: ...
    @property
    def lock(self) -> threading.RLock: ...
    @property
    def context(self) -> ChainContext: ...
    @property
    def recent(self) -> RecentHeaders: ...
    @property
    def head(self) -> MiniBlock: ...
    def head_state(self) -> StateAPI: ...
    def state_for(self, header: BlockHeaderAPI) -> StateAPI: ...


class ReadApi:
    """The read side of the chain (what JSON-RPC serves), composed into ExecutionApp as ``reads``.

    It keeps its own header and block caches and never writes: everything it answers comes from
    the store, the mempool and the head that ``ChainView`` exposes.
    """

    def __init__(self, chain: ChainView) -> None:
        self._view = chain
        self.store = chain.store
        self.mempool = chain.mempool
        self.chain_id = chain.chain_id
        self.suggested_tip = chain.suggested_tip
        self._lock = chain.lock
        self._context = chain.context
        self._chain = chain.recent
        self._headers: dict[int, BlockHeaderAPI] = {}
        self._bundles: dict[int, Bundle] = {}

    # --- caches --------------------------------------------------------------------------------

    def remember_header(self, height: int, header: BlockHeaderAPI) -> None:
        if len(self._headers) > 4096:
            self._headers.clear()
        self._headers[height] = header

    def remember_bundle(self, height: int, bundle: Bundle) -> None:
        if len(self._bundles) > 16:  # a 1000-transaction block with receipts is megabytes
            self._bundles.clear()
        self._bundles[height] = bundle

    def header_at(self, height: int) -> BlockHeaderAPI | None:
        header = self._headers.get(height)
        if header is None:
            encoded = self.store.header_at(height)
            if encoded is None:
                return None
            header = rlp.decode(encoded, sedes=HEADER_CLASS)
            self.remember_header(height, header)
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
            self.remember_bundle(height, found)
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
        head = self._view.head.height
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
        if height == self._view.head.height:
            return self._view.head_state()
        header = self.header_at(height)
        if header is None:
            raise QueryError("header not found")
        return self._view.state_for(header)

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
                balance = self._view.state_for(header).get_balance(req.sender)
                hi = min(hi, max(balance - req.value, 0) // price)
            first = self._run(req, header, hi)
            if first.is_error:
                if isinstance(first.error, Revert):
                    raise ExecutionReverted(first.output)
                if isinstance(first.error, OutOfGas):
                    raise QueryError(f"gas required exceeds allowance ({hi})")
                raise QueryError(_vm_error(first.error))
            used = hi - first.get_gas_remaining()
            if not req.data and req.to and not self._view.state_for(header).get_code(req.to):
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
                head = self._view.head.height
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
        return calculate_expected_base_fee_per_gas(self._view.head.header)

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
