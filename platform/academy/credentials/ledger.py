"""The academy ledger: a minichain network and the registry contract the academy writes to.

Writing (:class:`Registry`): the academy deploys ``AcademyRegistry.sol`` (compiled with solc-js
through ``labs.minichain.contracts``) and records there every issuer key added, rotated out or
revoked, every batch's Merkle root, and every status change.

Reading, without trusting whoever serves the data (:class:`TrustedLedger`): a ledger is pinned by
its genesis (validator set; the genesis block hash names it). For each block that holds registry
events we keep *commit evidence*: the block itself, the TBFT precommit votes it was committed with
(Ed25519 signatures of 2f+1 validators over ``tbft|precommit|height|round|`` + block hash, exactly
what a validator catching up checks) and the block's receipts. The verifier checks the votes
against the pinned validators, the block hash, the transactions and receipts tries against the
header, and only then reads the registry's events from the receipts. The same checks run online
(evidence fetched live over JSON-RPC) and offline (evidence from a cache), so offline verification
is as strong as online, only as old as the cache.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from labs.minichain import jsonrpc

from .keys import KeyHistory, KeyRecord

if TYPE_CHECKING:
    from web3.contract import Contract

PURPOSE_CODES = {"revocation": 0, "suspension": 1}
EVENTS = {
    "KeyAdded": "KeyAdded(bytes32,string,uint64)",
    "KeyRetired": "KeyRetired(bytes32,string,uint64)",
    "KeyRevoked": "KeyRevoked(bytes32,string,uint64)",
    "BatchAnchored": "BatchAnchored(bytes32,bytes32,uint64)",
    "StatusChanged": "StatusChanged(bytes32,bytes32,uint64,uint8,bool)",
}
TOPICS = {keccak(text=sig): name for name, sig in EVENTS.items()}


class LedgerError(Exception):
    """The ledger cannot be reached or its evidence does not hold; the message says which."""


@functools.lru_cache(maxsize=4096)
def issuer_tag(issuer_id: str) -> bytes:
    """The registry's key for an issuer. Cached: keccak through eth_utils costs more than an
    Ed25519 verification, and every check of every credential asks for the same few tags."""
    return keccak(text=issuer_id)


@functools.lru_cache(maxsize=4096)
def list_tag(list_url: str) -> bytes:
    """The registry's key for a status list (cached like :func:`issuer_tag`)."""
    return keccak(text=list_url)


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _hex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


# -- JSON-RPC -------------------------------------------------------------------------------------


def rpc_call(url: str, method: str, params: list | None = None, timeout: float = 15.0) -> Any:
    """One JSON-RPC call; LedgerError with the reason on any failure."""
    try:
        return jsonrpc.call(url, method, params, timeout)
    except jsonrpc.RpcReplyError as exc:
        raise LedgerError(f"ledger node {url}: {method}: {exc}") from None
    except (httpx.HTTPError, ValueError) as exc:
        raise LedgerError(f"ledger node {url} did not answer {method}: {exc}") from exc


# -- evidence -------------------------------------------------------------------------------------


@dataclass
class BlockEvidence:
    """A committed block with the signatures that made it final and its receipts."""

    height: int
    hash: str
    block: str
    precommits: list[dict[str, Any]]
    receipts: str

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "hash": self.hash,
            "block": self.block,
            "precommits": self.precommits,
            "receipts": self.receipts,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BlockEvidence:
        try:
            return cls(
                height=int(data["height"]),
                hash=str(data["hash"]),
                block=str(data["block"]),
                precommits=list(data["precommits"]),
                receipts=str(data["receipts"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerError(f"malformed block evidence: {exc}") from exc


def fetch_evidence(url: str, height: int) -> BlockEvidence:
    found = rpc_call(url, "minichain_commitEvidence", [hex(height)])
    if found is None:
        raise LedgerError(f"block {height} is not committed on {url}")
    return BlockEvidence.from_json(found)


@dataclass
class RegistryEvent:
    name: str
    issuer: bytes
    args: dict[str, Any]
    block_number: int
    block_hash: str
    timestamp: dt.datetime
    tx_hash: str


@dataclass
class VerifiedBlock:
    height: int
    hash: str
    timestamp: dt.datetime
    events: list[RegistryEvent]


@dataclass
class BatchFact:
    issuer: bytes
    count: int
    block_number: int
    block_hash: str
    tx_hash: str
    timestamp: dt.datetime


@dataclass
class LedgerFacts:
    """What verified evidence establishes about the registry, as of block ``height``."""

    genesis_hash: str
    registry: str
    height: int = 0
    as_of: dt.datetime | None = None
    keys: dict[bytes, KeyHistory] = field(default_factory=dict)
    batches: dict[bytes, BatchFact] = field(default_factory=dict)
    statuses: dict[tuple[bytes, int, int], bool] = field(default_factory=dict)

    def apply(self, block: VerifiedBlock) -> None:
        if block.height > self.height:
            self.height, self.as_of = block.height, block.timestamp
        for e in block.events:
            if e.name == "BatchAnchored":
                self.batches.setdefault(
                    e.args["root"],
                    BatchFact(
                        e.issuer,
                        e.args["count"],
                        e.block_number,
                        e.block_hash,
                        e.tx_hash,
                        e.timestamp,
                    ),
                )
            elif e.name == "StatusChanged":
                key = (e.args["list"], e.args["index"], e.args["purpose"])
                self.statuses[key] = e.args["value"]
            else:
                history = self.keys.setdefault(e.issuer, KeyHistory())
                multikey, when = e.args["multikey"], _utc(e.args["time"])
                record = history.find(multikey)
                if e.name == "KeyAdded" and record is None:
                    history.add(KeyRecord(multikey, valid_from=when))
                elif record is not None and e.name == "KeyRetired":
                    record.valid_until = when
                elif record is not None and e.name == "KeyRevoked":
                    history.revoke(multikey, when)


class TrustedLedger:
    """A ledger pinned by its genesis: checks commit evidence and reads registry events."""

    def __init__(self, genesis: dict[str, Any], registry: str) -> None:
        from labs.minichain.consensus.base import ConsensusEngine
        from labs.minichain.genesis import Genesis
        from labs.minichain.identity import Membership

        self.genesis_json = genesis
        self.genesis = Genesis.model_validate(genesis)
        self.registry = to_checksum_address(registry)
        self.membership = Membership(self.genesis)
        self.quorum = ConsensusEngine.quorum(len(self.genesis.validators))

    @functools.cached_property
    def genesis_hash(self) -> str:
        from eth.db.atomic import AtomicDB

        from labs.minichain.blocks import build_genesis

        return "0x" + build_genesis(AtomicDB(), self.genesis).hash.hex()

    def verify_block(self, ev: BlockEvidence) -> VerifiedBlock:
        """Check commit evidence; LedgerError says which part fails."""
        from labs.minichain.blocks import (
            MiniBlock,
            decode_receipts,
            ordered_trie_root,
            tx_hash,
        )
        from labs.minichain.consensus.tbft import PRECOMMIT, TbftVote

        try:
            block = MiniBlock.decode(_hex(ev.block))
        except ValueError as exc:
            raise LedgerError(f"block {ev.height}: {exc}") from exc
        if "0x" + block.hash.hex() != ev.hash.lower() or block.height != ev.height:
            raise LedgerError(f"block {ev.height}: the block does not hash to {ev.hash}")
        if self.genesis.consensus.engine != "tbft":
            raise LedgerError(
                f"the ledger runs {self.genesis.consensus.engine!r}: only TBFT keeps signed "
                "commit proofs a verifier can check"
            )
        rounds: dict[int, set[str]] = {}
        for raw in ev.precommits:
            try:
                vote = TbftVote(
                    PRECOMMIT, int(raw["height"]), int(raw["round"]), _hex(raw["block_hash"]),
                    str(raw["voter"]), _hex(raw["signature"]),
                )  # fmt: skip
            except (KeyError, TypeError, ValueError):
                continue
            if (
                raw.get("kind") == PRECOMMIT
                and vote.height == block.height
                and vote.block_hash == block.hash
                and self.membership.verify(vote.voter, vote.signing_bytes(), vote.signature)
            ):
                rounds.setdefault(vote.round, set()).add(vote.voter)
        best = max((len(v) for v in rounds.values()), default=0)
        if best < self.quorum:
            raise LedgerError(
                f"block {ev.height}: {best} valid validator precommit signature(s), "
                f"{self.quorum} needed"
            )
        txs = block.transactions
        if ordered_trie_root([t.encode() for t in txs]) != block.header.transaction_root:
            raise LedgerError(f"block {ev.height}: transactions do not match the header")
        try:
            receipts = decode_receipts(_hex(ev.receipts))
        except Exception as exc:  # rlp raises several types on junk
            raise LedgerError(f"block {ev.height}: receipts do not decode: {exc}") from exc
        if ordered_trie_root([r.encode() for r in receipts]) != block.header.receipt_root:
            raise LedgerError(f"block {ev.height}: receipts do not match the header")
        when = _utc(block.header.timestamp)
        events: list[RegistryEvent] = []
        registry = _hex(self.registry)
        for tx, receipt in zip(txs, receipts, strict=True):
            for log in receipt.logs:
                if log.address != registry or not log.topics:
                    continue
                event = self._decode(log, block.height, ev.hash, when, "0x" + tx_hash(tx).hex())
                if event is not None:
                    events.append(event)
        return VerifiedBlock(block.height, ev.hash, when, events)

    @staticmethod
    def _decode(
        log: Any, height: int, block_hash: str, when: dt.datetime, txh: str
    ) -> RegistryEvent | None:
        topics = [t.to_bytes(32, "big") for t in log.topics]
        name = TOPICS.get(topics[0])
        if name is None or len(topics) < 2:
            return None
        issuer = topics[1]
        if name in ("KeyAdded", "KeyRetired", "KeyRevoked"):
            multikey, time_ = abi_decode(["string", "uint64"], log.data)
            args: dict[str, Any] = {"multikey": multikey, "time": time_}
        elif name == "BatchAnchored":
            (count,) = abi_decode(["uint64"], log.data)
            args = {"root": topics[2], "count": count}
        else:
            index, purpose, value = abi_decode(["uint64", "uint8", "bool"], log.data)
            args = {"list": topics[2], "index": index, "purpose": purpose, "value": value}
        return RegistryEvent(name, issuer, args, height, block_hash, when, txh)

    def facts(self, evidence: list[BlockEvidence]) -> LedgerFacts:
        """Verify every block of ``evidence`` and gather the registry's state from them."""
        out = LedgerFacts(self.genesis_hash, self.registry)
        for ev in sorted(evidence, key=lambda e: e.height):
            out.apply(self.verify_block(ev))
        return out


def registry_heights(url: str, registry: str) -> list[int]:
    """Heights of every block holding a registry event (from the node's log index)."""
    logs = rpc_call(
        url, "eth_getLogs", [{"address": registry, "fromBlock": "0x0", "toBlock": "latest"}]
    )
    return sorted({int(log["blockNumber"], 16) for log in logs or []})


def fetch_ledger_bundle(url: str, registry: str) -> dict[str, Any]:
    """Everything a verifier needs to check the registry offline: the genesis, the registry's
    address, commit evidence for each block with a registry event, and for the latest block."""
    genesis = rpc_call(url, "minichain_genesis")
    heights = registry_heights(url, registry)
    head = int(rpc_call(url, "eth_blockNumber"), 16)
    blocks = [fetch_evidence(url, h).to_json() for h in heights]
    head_ev = fetch_evidence(url, head).to_json() if head and head not in heights else None
    return {
        "genesis": genesis,
        "registry": to_checksum_address(registry),
        "blocks": blocks + ([head_ev] if head_ev else []),
        "rpc": url,
    }


def facts_from_bundle(bundle: dict[str, Any]) -> LedgerFacts:
    try:
        ledger = TrustedLedger(bundle["genesis"], bundle["registry"])
        evidence = [BlockEvidence.from_json(b) for b in bundle["blocks"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise LedgerError(f"malformed ledger cache: {exc}") from exc
    return ledger.facts(evidence)


# -- running one -----------------------------------------------------------------------------------

LEDGER_CHAIN_ID = 7431
LEDGER_PARAMS = {"timeout_propose": 1.5, "empty_block_interval": 5.0}


def start_local_ledger(folder: Path, validators: int = 1) -> tuple[str, str]:
    """Start the academy ledger kept in ``folder`` (made there on first use): a TBFT minichain,
    whose commits carry validator signatures a verifier can check. Returns (JSON-RPC URL of a
    node, private key of the account academy writes the registry with). ``academy up`` runs one
    so that issued certificates are anchored out of the box; stop it with ``stop_network``."""
    from labs.minichain.netconfig import init_network
    from labs.minichain.network import start_network

    if not (folder / "genesis.json").exists():
        init_network(
            folder, nodes=validators, consensus="tbft", accounts=2, chain_id=LEDGER_CHAIN_ID,
            params=LEDGER_PARAMS,
        )  # fmt: skip
    cfg = start_network(folder)
    return cfg.rpc_url(0), cfg.accounts()[0]["private_key"]


# -- writing --------------------------------------------------------------------------------------


@functools.cache
def registry_source() -> str:
    return (
        resources.files("academy.credentials").joinpath("data", "AcademyRegistry.sol").read_text()
    )


@dataclass
class TxResult:
    tx_hash: str
    block_number: int
    block_hash: str
    timestamp: int


class Registry:
    """The academy's handle on its registry contract: sends signed transactions, waits for them."""

    def __init__(self, rpc_url: str, private_key: str, address: str | None = None) -> None:
        from eth_account import Account
        from web3 import Web3

        from labs.minichain.contracts import compile_solidity, contract_at

        self.rpc_url = rpc_url
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        self.account = Account.from_key(private_key)
        self.compiled = compile_solidity(
            {"AcademyRegistry.sol": registry_source()}, contract="AcademyRegistry"
        )
        self.contract = contract_at(self.w3, self.compiled, address) if address else None

    @classmethod
    def deploy(cls, rpc_url: str, private_key: str) -> Registry:
        from labs.minichain.contracts import deploy

        reg = cls(rpc_url, private_key)
        reg.contract = deploy(reg.w3, reg.compiled, account=reg.account)
        return reg

    @property
    def address(self) -> str:
        assert self.contract is not None, "deploy the registry or give its address"
        return self.contract.address

    @property
    def deployed(self) -> Contract:
        """The registry contract, to call: deployed here or given by its address."""
        assert self.contract is not None, "deploy the registry or give its address"
        return self.contract

    def head_time(self) -> dt.datetime:
        """Timestamp of the newest block (may run ahead of the wall clock)."""
        return _utc(self.w3.eth.get_block("latest")["timestamp"])

    def genesis_hash(self) -> str:
        return self.w3.eth.get_block(0)["hash"].to_0x_hex()

    def _send(self, calls: list[Any]) -> list[TxResult]:
        """Send several calls back to back (consecutive nonces), then wait for them all."""
        w3, acct = self.w3, self.account
        nonce = w3.eth.get_transaction_count(acct.address, "pending")
        chain_id = w3.eth.chain_id
        hashes = []
        for i, call in enumerate(calls):
            tx = call.build_transaction(
                {"from": acct.address, "nonce": nonce + i, "chainId": chain_id, "gas": 200_000}
            )
            hashes.append(w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction))
        out = []
        for h in hashes:
            receipt = w3.eth.wait_for_transaction_receipt(h, timeout=120)
            if receipt["status"] != 1:
                raise LedgerError(f"registry transaction {h.to_0x_hex()} reverted")
            block = w3.eth.get_block(receipt["blockNumber"])
            out.append(
                TxResult(
                    h.to_0x_hex(),
                    receipt["blockNumber"],
                    receipt["blockHash"].to_0x_hex(),
                    block["timestamp"],
                )
            )
        return out

    def add_key(self, issuer_id: str, multikey: str, valid_from: dt.datetime) -> TxResult:
        fn = self.deployed.functions.addKey(
            issuer_tag(issuer_id), multikey, int(valid_from.timestamp())
        )
        return self._send([fn])[0]

    def retire_key(self, issuer_id: str, multikey: str, valid_until: dt.datetime) -> TxResult:
        fn = self.deployed.functions.retireKey(
            issuer_tag(issuer_id), multikey, int(valid_until.timestamp())
        )
        return self._send([fn])[0]

    def revoke_key(self, issuer_id: str, multikey: str, revoked_at: dt.datetime) -> TxResult:
        fn = self.deployed.functions.revokeKey(
            issuer_tag(issuer_id), multikey, int(revoked_at.timestamp())
        )
        return self._send([fn])[0]

    def anchor(self, issuer_id: str, root: bytes, count: int) -> TxResult:
        return self._send([self.deployed.functions.anchor(issuer_tag(issuer_id), root, count)])[0]

    def set_statuses(
        self, issuer_id: str, changes: list[tuple[str, int, str, bool]]
    ) -> list[TxResult]:
        """Record status changes ``(list url, index, purpose, value)``."""
        calls = [
            self.deployed.functions.setStatus(
                issuer_tag(issuer_id), list_tag(url), index, PURPOSE_CODES[purpose], value
            )
            for url, index, purpose, value in changes
        ]
        return self._send(calls)

    def identity(self) -> dict[str, Any]:
        return {
            "chainId": self.w3.eth.chain_id,
            "genesisHash": self.genesis_hash(),
            "registry": self.address,
        }
