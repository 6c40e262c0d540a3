"""Ethereum-format blocks for minichain and the one routine that executes them on py-evm.

Blocks, transactions, receipts and blooms are real Ethereum (Cancun) ones, so block hashes and
transaction hashes match what web3.py and eth-account compute, and a learner can check any of
them by hand. Consensus only sees :class:`MiniBlock` through its ``height`` / ``hash`` /
``parent_hash`` / ``encode()``; the EVM block inside is the application's business.

:func:`execute` is shared by the proposer (build: skip transactions that fail) and every validator
(re-execute: any failing transaction rejects the block), so both compute headers the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import rlp
from eth._utils.db import apply_state_dict
from eth.abc import (
    BlockAPI,
    BlockHeaderAPI,
    ChainDatabaseAPI,
    LegacyTransactionFieldsAPI,
    ReceiptAPI,
    SignedTransactionAPI,
)
from eth.chains.base import ChainContext
from eth.consensus.context import ConsensusContext
from eth.constants import BLANK_ROOT_HASH, CREATE_CONTRACT_ADDRESS, ZERO_ADDRESS
from eth.db.atomic import AtomicDB
from eth.exceptions import HeaderNotFound
from eth.rlp.headers import BlockHeader
from eth.typing import AccountDetails
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.cancun.blocks import CancunBlock, CancunBlockHeader
from eth.vm.forks.cancun.receipts import CancunReceiptBuilder
from eth.vm.forks.cancun.transactions import CancunTransactionBuilder
from eth_typing import Address
from eth_utils import ValidationError, keccak

from .genesis import Genesis

VM = CancunVM
"""The EVM fork every minichain block runs under (Cancun: PUSH0, MCOPY, transient storage)."""
# The VM's classes, named concretely: py-evm's getters (VM.get_block_class() and the like) return
# the abstract API types, which hide the Cancun transaction builder's typed-transaction methods.
# tests/labs/test_blocks.py checks that these are the ones the VM uses.
BLOCK_CLASS = CancunBlock
HEADER_CLASS = CancunBlockHeader
TX_BUILDER = CancunTransactionBuilder
RECEIPT_BUILDER = CancunReceiptBuilder
SUPPORTED_TX_TYPES = (0, 1, 2)
MAX_EXTRA_DATA = 32


class ChainMakerRunner(Protocol):
    """Runs one ChainMaker request on a block's state (labs.minichain.chainmaker.executor)."""

    def apply(self, state: Any, header: Any, raw: bytes) -> tuple[str, bytes]: ...


CM_PREFIX = b"\x02"  # never the first byte of an RLP list, so plain blocks stay as they were


def cm_commitment(requests: Sequence[bytes]) -> bytes:
    """What a header commits to for its ChainMaker requests (BLANK_ROOT_HASH when none): the
    Cancun field parent_beacon_block_root, which nothing else here uses."""
    return keccak(rlp.encode(list(requests))) if requests else BLANK_ROOT_HASH


class InvalidBlock(ValueError):
    """A block (or a transaction in it) breaks the chain's rules; the message says which."""


class MiniBlock:
    """A block as consensus sees it: height, hash, parent hash and bytes; the EVM block inside."""

    __slots__ = ("evm", "height", "hash", "parent_hash", "cm", "_encoded")

    def __init__(
        self, evm: BlockAPI, encoded: bytes | None = None, cm: Sequence[bytes] = ()
    ) -> None:
        self.evm = evm
        self.height: int = evm.header.block_number
        self.hash: bytes = evm.header.hash
        self.parent_hash: bytes = evm.header.parent_hash
        self.cm: tuple[bytes, ...] = tuple(cm)
        """ChainMaker requests (serialised TxRequests), committed to by the header's
        parent_beacon_block_root (see :func:`cm_commitment`)."""
        self._encoded = encoded

    @property
    def header(self) -> BlockHeaderAPI:
        return self.evm.header

    @property
    def transactions(self) -> tuple[SignedTransactionAPI, ...]:
        return tuple(self.evm.transactions)

    def encode(self) -> bytes:
        """The RLP of the whole Ethereum block (header, transactions, uncles, withdrawals); with
        ChainMaker requests, CM_PREFIX + RLP of [that RLP, [request, ...]]."""
        if self._encoded is None:
            self._encoded = rlp.encode(self.evm)
            if self.cm:
                self._encoded = CM_PREFIX + rlp.encode([self._encoded, list(self.cm)])
        return self._encoded

    @classmethod
    def decode(cls, data: bytes) -> MiniBlock:
        """Inverse of :meth:`encode`; anything malformed raises ValueError (peers may send junk)."""
        cm: list[bytes] = []
        try:
            if data[:1] == CM_PREFIX:
                inner, cm = rlp.decode(bytes(data[1:]))
                if not isinstance(inner, bytes) or not all(isinstance(r, bytes) for r in cm):
                    raise ValueError("malformed ChainMaker section")
                evm = rlp.decode(inner, sedes=BLOCK_CLASS)
            else:
                evm = rlp.decode(data, sedes=BLOCK_CLASS)
        except Exception as exc:  # rlp raises many types on junk; all mean "not a block"
            raise ValueError(f"not a minichain block: {exc}") from exc
        return cls(evm, bytes(data), cm)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MiniBlock) and other.hash == self.hash

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return (
            f"MiniBlock(#{self.height} 0x{self.hash.hex()[:12]} txs={len(self.evm.transactions)})"
        )


def decode_transaction(raw: bytes) -> SignedTransactionAPI:
    """A signed transaction from wire bytes (legacy RLP or EIP-2718 typed); ValueError if junk."""
    try:
        return TX_BUILDER.decode(bytes(raw))
    except Exception as exc:  # rlp and py-evm raise several types; all mean "cannot decode"
        raise ValueError(f"could not decode transaction: {exc}") from exc


def tx_hash(tx: SignedTransactionAPI) -> bytes:
    """The Ethereum transaction hash (keccak of the wire bytes for every type)."""
    return keccak(tx.encode()) if tx.type_id is not None else keccak(rlp.encode(tx))


def contract_address(sender: bytes, nonce: int) -> bytes:
    """Where a creation transaction from ``sender`` with ``nonce`` puts its contract."""
    return keccak(rlp.encode([sender, nonce]))[12:]


def chain_id_problem(tx: SignedTransactionAPI, chain_id: int) -> str | None:
    """Why ``tx`` cannot run on this chain (replay protection), or None when it may."""
    if tx.type_id is not None and tx.type_id not in SUPPORTED_TX_TYPES:
        return f"transaction type {tx.type_id} is not supported: use type 0, 1 or 2"
    got = tx.chain_id
    if got is None:
        return f"transaction is not replay-protected (EIP-155): sign it with chain id {chain_id}"
    if got != chain_id:
        return f"wrong chain id: expected {chain_id}, got {got}"
    return None


# -------------------------------------------------------------------------------------------------
# Genesis
# -------------------------------------------------------------------------------------------------


def genesis_accounts(genesis: Genesis) -> dict[Address, AccountDetails]:
    """The alloc of ``genesis`` as py-evm's account-state dict."""
    accounts: dict[Address, AccountDetails] = {}
    for address, acct in genesis.alloc.items():
        code = bytes.fromhex(acct.code[2:] if acct.code.startswith("0x") else acct.code)
        storage = {
            int(k, 16) if k.startswith("0x") else int(k): int(v, 16)
            if v.startswith("0x")
            else int(v)
            for k, v in acct.storage.items()
        }
        accounts[Address(bytes.fromhex(address.removeprefix("0x")))] = {
            "balance": acct.balance,
            "nonce": acct.nonce,
            "code": code,
            "storage": storage,
        }
    return accounts


def build_genesis(db: AtomicDB, genesis: Genesis) -> MiniBlock:
    """Write the genesis state into ``db`` and return block 0.

    ``extra_data`` is keccak of the whole genesis file, so two chains that differ only in their
    validators or consensus settings still have different genesis hashes.
    """
    pre = BlockHeader(difficulty=0, block_number=-1, gas_limit=0)
    state = VM.build_state(db, pre, ChainContext(genesis.chain_id))
    apply_state_dict(state, genesis_accounts(genesis))
    state.persist()
    header = VM.create_genesis_header(
        difficulty=0,
        gas_limit=genesis.gas_limit,
        timestamp=genesis.timestamp,
        base_fee_per_gas=genesis.base_fee_per_gas,
        state_root=state.state_root,
        coinbase=ZERO_ADDRESS,
        extra_data=keccak(genesis.hash_input()),
    )
    return MiniBlock(BLOCK_CLASS(header, transactions=[], uncles=[], withdrawals=[]))


# -------------------------------------------------------------------------------------------------
# Execution
# -------------------------------------------------------------------------------------------------


class RecentHeaders:
    """The little of a chain database the EVM needs: the state db and headers for BLOCKHASH.

    py-evm asks for a whole ``ChainDatabaseAPI`` where it reads only ``db`` and
    ``get_block_header_by_hash``; :meth:`as_chaindb` hands this object over under that type.
    """

    def __init__(self, db: AtomicDB, load: Callable[[bytes], BlockHeaderAPI | None]) -> None:
        self.db = db
        self._load = load
        self._headers: dict[bytes, BlockHeaderAPI] = {}

    def add(self, header: BlockHeaderAPI) -> None:
        self._headers[header.hash] = header
        if len(self._headers) > 1024:  # BLOCKHASH reaches back 256 blocks; keep a margin
            for key in list(self._headers)[:512]:
                del self._headers[key]

    def get_block_header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI:
        header = self._headers.get(block_hash)
        if header is None:
            header = self._load(block_hash)
            if header is None:
                raise HeaderNotFound(f"no header 0x{block_hash.hex()}")
        return header

    def as_chaindb(self) -> ChainDatabaseAPI:
        # cast: the VM and VM.get_prev_hashes only read db and get_block_header_by_hash, which
        # this class has; the rest of ChainDatabaseAPI (writes, canonical chain) is never called.
        return cast(ChainDatabaseAPI, self)


@dataclass
class Executed:
    """A block after execution, with everything commit and the RPC need, so nothing runs twice."""

    block: MiniBlock
    receipts: tuple[ReceiptAPI, ...]
    senders: tuple[bytes, ...]
    tx_hashes: tuple[bytes, ...]
    touched: frozenset[bytes] = frozenset()
    """Accounts the block read or wrote (their pending transactions may have become invalid)."""
    skipped: dict[bytes, str] = field(default_factory=dict)
    """Build only: hashes of pending transactions that failed, with the reason."""
    cm_results: tuple[tuple[str, bytes], ...] = ()
    """(tx id, serialised Result) of each ChainMaker request in the block, in order."""


def header_template(
    parent: BlockHeaderAPI, coinbase: bytes, timestamp: int, gas_limit: int, extra_data: bytes
) -> BlockHeaderAPI:
    """The header of the child of ``parent`` before any transaction ran (base fee per EIP-1559)."""
    return VM.create_header_from_parent(
        parent,
        coinbase=coinbase,
        timestamp=timestamp,
        gas_limit=gas_limit,
        extra_data=extra_data,
    )


def execute(
    chain: RecentHeaders,
    template: BlockHeaderAPI,
    candidates: Iterable[tuple[SignedTransactionAPI, bytes]],
    chain_id: int,
    *,
    strict: bool,
    max_txs: int = 1 << 30,
    chainmaker: tuple[ChainMakerRunner, Sequence[bytes]] | None = None,
) -> Executed:
    """Run ``candidates`` (transaction, hash) on top of the template's parent state.

    ``strict`` (validating a peer's block): the first failing transaction raises InvalidBlock.
    Otherwise (building): failing transactions are skipped and listed in ``Executed.skipped``.
    State trie nodes go to ``chain.db`` (buffered by the store until the block commits).
    """
    vm = VM(template, chain.as_chaindb(), ChainContext(chain_id), ConsensusContext(chain.db))
    empty = BLOCK_CLASS(template, transactions=[], uncles=[], withdrawals=[])
    vm.block_preprocessing(empty)
    state = vm.state
    header = template
    included: list[SignedTransactionAPI] = []
    receipts: list[ReceiptAPI] = []
    senders: list[bytes] = []
    hashes: list[bytes] = []
    skipped: dict[bytes, str] = {}
    blocked: set[bytes] = set()  # building: senders with a skipped transaction (nonce gap now)
    for tx, h in candidates:
        if not strict and (len(included) >= max_txs or header.gas_limit - header.gas_used < 21000):
            break
        sender: Address | None = None
        problem = chain_id_problem(tx, chain_id)
        if problem is None:
            try:
                sender = tx.sender
            except Exception as exc:  # eth-keys raises several types for unusable signatures
                problem = f"invalid signature: {exc}"
        if problem is None and sender in blocked:
            problem = "an earlier transaction of the same sender was skipped"
        if problem is None:
            try:
                receipt, _ = vm.apply_transaction(header, tx)
            except (ValidationError, ValueError) as exc:  # nonce, funds, fees, gas left
                problem = str(exc)
        if problem is not None:
            if strict:
                raise InvalidBlock(f"transaction {len(included)} (0x{h.hex()}): {problem}")
            skipped[h] = problem
            if sender is not None:
                blocked.add(sender)
            continue
        assert sender is not None  # no problem means the sender was recovered
        header = vm.add_receipt_to_header(header, receipt)
        included.append(tx)
        receipts.append(receipt)
        senders.append(sender)
        hashes.append(h)
    cm_requests: tuple[bytes, ...] = ()
    cm_results: list[tuple[str, bytes]] = []
    if chainmaker is not None and chainmaker[1]:
        runner, cm_requests = chainmaker[0], tuple(chainmaker[1])
        for raw in cm_requests:
            cm_results.append(runner.apply(state, header, raw))
    vm._assign_block_rewards(empty)  # post-merge reward is 0 but the coinbase is touched (EIP-161)
    witness = state.persist()
    tx_root = ordered_trie_root([tx.encode() for tx in included])
    receipt_root = ordered_trie_root([r.encode() for r in receipts])
    final = header.copy(
        transaction_root=tx_root,
        receipt_root=receipt_root,
        state_root=state.state_root,
        withdrawals_root=BLANK_ROOT_HASH,
        parent_beacon_block_root=cm_commitment(cm_requests),
    )
    block = BLOCK_CLASS(final, transactions=included, uncles=[], withdrawals=[])
    return Executed(
        block=MiniBlock(block, cm=cm_requests),
        cm_results=tuple(cm_results),
        receipts=tuple(receipts),
        senders=tuple(senders),
        tx_hashes=tuple(hashes),
        touched=frozenset(witness.accounts_queried),
        skipped=skipped,
    )


def ordered_trie_root(values: Sequence[bytes]) -> bytes:
    """Root of the Merkle-Patricia trie mapping rlp(index) -> value (transactions, receipts).

    Built in one pass over the sorted keys instead of by one insert per item, which makes it an
    order of magnitude cheaper than growing a hexary trie; the root is the same.
    """
    pairs = sorted((_nibbles(rlp.encode(i)), bytes(v)) for i, v in enumerate(values))
    if not pairs:
        return BLANK_ROOT_HASH
    return keccak(rlp.encode(_trie_node(pairs, 0)))


def _nibbles(key: bytes) -> tuple[int, ...]:
    out: list[int] = []
    for b in key:
        out.append(b >> 4)
        out.append(b & 15)
    return tuple(out)


def _hex_prefix(nibbles: Sequence[int], leaf: bool) -> bytes:
    flag = 2 if leaf else 0
    nibbles = [flag + 1, *nibbles] if len(nibbles) % 2 else [flag, 0, *nibbles]
    return bytes(nibbles[i] * 16 + nibbles[i + 1] for i in range(0, len(nibbles), 2))


def _trie_ref(node: Any) -> Any:
    encoded = rlp.encode(node)
    return node if len(encoded) < 32 else keccak(encoded)


def _trie_node(pairs: list[tuple[tuple[int, ...], bytes]], depth: int) -> Any:
    if len(pairs) == 1:
        key, value = pairs[0]
        return [_hex_prefix(key[depth:], leaf=True), value]
    first, last = pairs[0][0], pairs[-1][0]  # sorted: the common prefix of all is theirs
    shared = 0
    while (
        depth + shared < len(first)
        and depth + shared < len(last)
        and first[depth + shared] == last[depth + shared]
    ):
        shared += 1
    if shared:
        child = _trie_node(pairs, depth + shared)
        return [_hex_prefix(first[depth : depth + shared], leaf=False), _trie_ref(child)]
    branch: list[Any] = [b""] * 17
    groups: dict[int, list[tuple[tuple[int, ...], bytes]]] = {}
    for key, value in pairs:
        if len(key) == depth:
            branch[16] = value
        else:
            groups.setdefault(key[depth], []).append((key, value))
    for nibble, group in groups.items():
        branch[nibble] = _trie_ref(_trie_node(group, depth + 1))
    return branch


def encode_receipts(receipts: Iterable[ReceiptAPI]) -> bytes:
    return rlp.encode([r.encode() for r in receipts])


def decode_receipts(data: bytes) -> list[ReceiptAPI]:
    return [RECEIPT_BUILDER.decode(item) for item in rlp.decode(data)]


def base_fee(header: BlockHeaderAPI) -> int:
    """The header's base fee per gas; py-evm types it optional because pre-London headers lack it."""
    fee = header.base_fee_per_gas
    if fee is None:
        raise InvalidBlock(f"header of block {header.block_number} has no base fee (pre-London)")
    return fee


def effective_gas_price(tx: SignedTransactionAPI, base_fee: int) -> int:
    """What the sender paid per gas: the legacy price, or base fee plus the capped tip."""
    if tx.type_id == 2:
        return min(tx.max_fee_per_gas, base_fee + tx.max_priority_fee_per_gas)
    return tx.gas_price


def is_create(tx: SignedTransactionAPI) -> bool:
    return tx.to == CREATE_CONTRACT_ADDRESS


# -------------------------------------------------------------------------------------------------
# JSON shapes (the way Ethereum JSON-RPC clients expect them: hex quantities, 0x-prefixed data)
# -------------------------------------------------------------------------------------------------


def hex_int(n: int) -> str:
    return hex(n)


def hex_data(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def hex_word(n: int) -> str:
    return "0x" + n.to_bytes(32, "big").hex()


def _cancun_root(root: bytes | None, name: str) -> bytes:
    """A root every Cancun header carries; py-evm types it optional for the forks before it."""
    if root is None:
        raise InvalidBlock(f"header has no {name}: minichain blocks are Cancun blocks")
    return root


def block_json(block: MiniBlock, transactions: list[Any]) -> dict[str, Any]:
    """A block as ``eth_getBlockByNumber`` returns it; ``transactions`` already shaped."""
    h = block.header
    return {
        "number": hex_int(h.block_number),
        "hash": hex_data(h.hash),
        "parentHash": hex_data(h.parent_hash),
        "nonce": hex_data(h.nonce),
        "mixHash": hex_data(h.mix_hash),
        "sha3Uncles": hex_data(h.uncles_hash),
        "logsBloom": hex_data(h.bloom.to_bytes(256, "big")),
        "transactionsRoot": hex_data(h.transaction_root),
        "stateRoot": hex_data(h.state_root),
        "receiptsRoot": hex_data(h.receipt_root),
        "miner": hex_data(h.coinbase),
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": hex_data(h.extra_data),
        "size": hex_int(len(block.encode())),
        "gasLimit": hex_int(h.gas_limit),
        "gasUsed": hex_int(h.gas_used),
        "timestamp": hex_int(h.timestamp),
        "baseFeePerGas": hex_int(base_fee(h)),
        "withdrawalsRoot": hex_data(_cancun_root(h.withdrawals_root, "withdrawals_root")),
        "withdrawals": [],
        "blobGasUsed": hex_int(h.blob_gas_used),
        "excessBlobGas": hex_int(h.excess_blob_gas),
        "parentBeaconBlockRoot": hex_data(
            _cancun_root(h.parent_beacon_block_root, "parent_beacon_block_root")
        ),
        "transactions": transactions,
        "uncles": [],
    }


def tx_json(
    tx: SignedTransactionAPI,
    sender: bytes,
    h: bytes,
    block: MiniBlock | None,
    index: int | None,
) -> dict[str, Any]:
    """A transaction as ``eth_getTransactionByHash`` shows it (block fields null while pending)."""
    type_id = tx.type_id or 0
    out: dict[str, Any] = {
        "hash": hex_data(h),
        "type": hex_int(type_id),
        "nonce": hex_int(tx.nonce),
        "from": hex_data(sender),
        "to": None if is_create(tx) else hex_data(tx.to),
        "value": hex_int(tx.value),
        "gas": hex_int(tx.gas),
        "input": hex_data(tx.data),
        "blockHash": None if block is None else hex_data(block.hash),
        "blockNumber": None if block is None else hex_int(block.height),
        "transactionIndex": None if index is None else hex_int(index),
        "r": hex_int(tx.r),
        "s": hex_int(tx.s),
    }
    if isinstance(tx, LegacyTransactionFieldsAPI):  # type 0, the only one with a ``v`` field
        out["gasPrice"] = hex_int(tx.gas_price)
        out["v"] = hex_int(tx.v)
        if tx.chain_id is not None:
            out["chainId"] = hex_int(tx.chain_id)
        return out
    if tx.chain_id is not None:  # always set on a typed transaction; py-evm types it optional
        out["chainId"] = hex_int(tx.chain_id)
    out["v"] = hex_int(tx.y_parity)
    out["yParity"] = hex_int(tx.y_parity)
    out["accessList"] = [
        {"address": hex_data(addr), "storageKeys": [hex_word(k) for k in keys]}
        for addr, keys in tx.access_list
    ]
    if type_id == 2:
        out["maxFeePerGas"] = hex_int(tx.max_fee_per_gas)
        out["maxPriorityFeePerGas"] = hex_int(tx.max_priority_fee_per_gas)
        base = None if block is None else block.header.base_fee_per_gas
        out["gasPrice"] = hex_int(
            tx.max_fee_per_gas if base is None else effective_gas_price(tx, base)
        )
    else:
        out["gasPrice"] = hex_int(tx.gas_price)
    return out


def receipt_json(
    block: MiniBlock,
    receipts: list[ReceiptAPI],
    senders: list[bytes],
    index: int,
    first_log_index: int,
) -> dict[str, Any]:
    """The receipt of transaction ``index`` of ``block`` (``first_log_index``: logs before it)."""
    tx = block.evm.transactions[index]
    receipt = receipts[index]
    h = tx_hash(tx)
    previous = receipts[index - 1].gas_used if index else 0
    created = contract_address(senders[index], tx.nonce) if is_create(tx) else None
    return {
        "transactionHash": hex_data(h),
        "transactionIndex": hex_int(index),
        "blockHash": hex_data(block.hash),
        "blockNumber": hex_int(block.height),
        "from": hex_data(senders[index]),
        "to": None if created else hex_data(tx.to),
        "cumulativeGasUsed": hex_int(receipt.gas_used),
        "gasUsed": hex_int(receipt.gas_used - previous),
        "effectiveGasPrice": hex_int(effective_gas_price(tx, base_fee(block.header))),
        "contractAddress": None if created is None else hex_data(created),
        "logs": [
            log_json(log, block, h, index, first_log_index + i)
            for i, log in enumerate(receipt.logs)
        ],
        "logsBloom": hex_data(int(receipt.bloom).to_bytes(256, "big")),
        "status": "0x1" if receipt.state_root == b"\x01" else "0x0",
        "type": hex_int(tx.type_id or 0),
    }


def log_json(log: Any, block: MiniBlock, h: bytes, tx_index: int, log_index: int) -> dict[str, Any]:
    return {
        "address": hex_data(log.address),
        "topics": [hex_word(t) for t in log.topics],
        "data": hex_data(log.data),
        "blockNumber": hex_int(block.height),
        "blockHash": hex_data(block.hash),
        "transactionHash": hex_data(h),
        "transactionIndex": hex_int(tx_index),
        "logIndex": hex_int(log_index),
        "removed": False,
    }
