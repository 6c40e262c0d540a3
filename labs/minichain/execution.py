"""The application of a minichain node: block building, validation and commit on py-evm.

Consensus decides *which* block comes next; this module decides *what a block means*. It is
what the node's :class:`~labs.minichain.consensus.base.Host` calls for ``create_block`` /
``validate_block`` / ``commit_block`` / ``committed_block`` / ``has_pending_transactions``. What
waits for a block lives in :mod:`labs.minichain.mempool`; what JSON-RPC reads is
:class:`~labs.minichain.reads.ReadApi`, composed here as ``app.reads``.

Speed without shortcuts on correctness:

- a transaction is decoded and its sender recovered once, when it enters the mempool;
- a block executes once per node: the proposer keeps what it built, a validator keeps what it
  validated, and ``commit_block`` reuses that result (keyed by block hash);
- state trie nodes stay in memory until the block commits, then go to SQLite in the same
  transaction as the block and the head pointer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI, SignedTransactionAPI, StateAPI
from eth.chains.base import ChainContext
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth_typing import Address
from eth_utils import keccak, to_checksum_address

from .blocks import (
    HEADER_CLASS,
    MAX_EXTRA_DATA,
    VM,
    Executed,
    InvalidBlock,
    MiniBlock,
    RecentHeaders,
    build_genesis,
    chain_id_problem,
    decode_transaction,
    encode_receipts,
    execute,
    header_template,
    ordered_trie_root,
    tx_hash,
)
from .consensus.base import Block
from .genesis import Genesis
from .mempool import Mempool, PendingTx, RequestPool, TxError, max_cost
from .reads import (
    BlockRef,
    Bundle,
    CallRequest,
    ExecutionReverted,
    QueryError,
    ReadApi,
    revert_reason,
)
from .storage import BlockRecord, Store, StoreError

__all__ = [
    "BlockRef",
    "Bundle",
    "CallRequest",
    "ExecutionApp",
    "ExecutionReverted",
    "Mempool",
    "MiniBlock",
    "PendingTx",
    "QueryError",
    "ReadApi",
    "RequestPool",
    "TxError",
    "max_cost",
    "revert_reason",
]
"""The application, and the names its users have always imported from here."""

SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def _address(value: bytes | str) -> bytes:
    if isinstance(value, str):
        value = bytes.fromhex(value.removeprefix("0x"))
    if len(value) != 20:
        raise ValueError(f"an address is 20 bytes, got {len(value)}")
    return bytes(value)


class ExecutionApp:
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
        self.lock = threading.RLock()
        self.context = ChainContext(self.chain_id)
        self.recent = RecentHeaders(store.atomic_db, self._load_header)
        self._executed: dict[bytes, Executed] = {}
        self._rejected: dict[bytes, str] = {}
        self.chainmaker: Any = None
        """The ChainMaker request runner when the genesis configures ChainMaker's orgs."""
        self.cm_pool = RequestPool()
        """Admitted ChainMaker requests by tx id, in arrival order."""
        if genesis.chainmaker is not None:
            from .chainmaker.executor import Executor

            self.chainmaker = Executor(genesis.chainmaker)
        self.executions = 0
        """How many times a block was executed (build or validate): commit never adds one."""
        self.reads = ReadApi(self)
        """The read side (state, calls, blocks, receipts, logs, fees) over this app's chain."""
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
        with self.lock:
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
        with self.lock:
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
        with self.lock:
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
            cm = self.cm_pool.first(self._cm_capacity()) if self.chainmaker else []
            self.executions += 1
            ex = execute(
                self.recent,
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
        with self.lock:
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
        with self.lock:
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
        if block.cm and len(block.cm) > self._cm_capacity():
            return f"the block carries {len(block.cm)} ChainMaker requests, over the limit"
        if block.cm:
            reason = self._cm_replayed(block.cm)
            if reason is not None:
                return reason
        template = header_template(head, h.coinbase, h.timestamp, h.gas_limit, h.extra_data)
        self.executions += 1
        ex = execute(
            self.recent,
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

    def _cm_capacity(self) -> int:
        """ChainMaker requests a block on the head may carry: the chain configuration's
        block_tx_capacity, within this node's own limit."""
        return min(self.max_txs_per_block, self.chainmaker.block_capacity(self.head_state()))

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
        self.cm_pool.remove([tx_id for tx_id, _ in ex.cm_results])
        self._set_head(block)
        self.reads.remember_bundle(block.height, (block, list(ex.receipts), list(ex.senders)))
        self._executed = {k: v for k, v in self._executed.items() if v.block.height > block.height}
        self._rejected.clear()
        self.mempool.remove(ex.tx_hashes)
        if self.mempool.by_sender:
            state = self.head_state()
            check = set(ex.senders) | set(ex.touched)
            for sender in [Address(s) for s in self.mempool.by_sender if s in check]:
                self.mempool.keep_valid(sender, state.get_nonce(sender), state.get_balance(sender))

    def _load_header(self, block_hash: bytes) -> BlockHeaderAPI | None:
        encoded = self.store.header_by_hash(block_hash)
        return None if encoded is None else rlp.decode(encoded, sedes=HEADER_CLASS)

    def _set_head(self, block: MiniBlock) -> None:
        self.head = block
        self.recent.add(block.header)
        self._head_state: StateAPI | None = None
        self.reads.remember_header(block.height, block.header)

    def head_state(self) -> StateAPI:
        """Read-only state at the committed head (one object, reused until the next commit)."""
        if self._head_state is None:
            self._head_state = self.state_for(self.head.header)
        return self._head_state

    def state_for(self, header: BlockHeaderAPI) -> StateAPI:
        return VM.build_state(self.store.atomic_db, header, self.context, ())
