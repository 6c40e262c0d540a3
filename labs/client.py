"""What a lab notebook imports to reach the learner's own chain: ``from labs.client import connect``.

In the learner's JupyterLab the platform sets ``ACADEMY_RPC_URL`` (one validator's JSON-RPC) and
``ACADEMY_RPC_URLS`` (all of them, comma-separated, for the fault switches); funded keys come in
``ACADEMY_PRIVATE_KEYS`` (comma-separated hex). Where none is set -- notably in the grading
sandbox, which has no network at all -- :func:`connect` gives an *in-process* minichain instead:
the same execution layer (py-evm), the same JSON-RPC dispatcher the real node serves, one block per
transaction, and ten funded accounts. A graded cell therefore behaves the same on the learner's
chain and in the grader, and a cell that needs a live multi-validator chain (faults, consensus
experiments) checks :func:`live` first, so grading never depends on one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

__all__ = [
    "ChainFaults",
    "LiveChainRequired",
    "accounts",
    "connect",
    "connect_partner",
    "faults",
    "live",
    "local_chain",
]

LOCAL_CHAIN_ID = 1337
LOCAL_ACCOUNTS = 10
LOCAL_BALANCE = 10**24  # one million ether each, like `academy chain init`


class LiveChainRequired(RuntimeError):
    """A cell asked for the learner's live chain where there is none (e.g. while grading)."""


def live() -> bool:
    """True when this notebook runs beside the learner's live chain (``ACADEMY_RPC_URL`` set)."""
    return bool(os.environ.get("ACADEMY_RPC_URL", "").strip())


def _local_keys() -> list[bytes]:
    """Deterministic development keys for the in-process chain (never for real money)."""
    import hashlib

    return [hashlib.sha256(b"chainacademy-local-%d" % i).digest() for i in range(LOCAL_ACCOUNTS)]


class _InstantNode:
    """The node seen by the RPC dispatcher: each accepted transaction is committed in its own
    block at once (a consensus of one), so ``wait_for_transaction_receipt`` returns immediately."""

    coinbase = bytes.fromhex("c0" * 20)

    def __init__(self, app: Any) -> None:
        self.app = app

    def submit_transaction(self, raw: bytes) -> bytes:
        tx_hash = self.app.check_tx(raw)
        self.commit_pending()
        return tx_hash

    def commit_pending(self) -> None:
        app = self.app
        if app.has_pending():
            now = max(time.time(), app.head.header.timestamp + 1)
            block = app.build_block(app.committed_height() + 1, self.coinbase, now)
            app.commit_block(block, b"local")

    def rpc_methods(self) -> dict[str, Any]:
        return {
            "minichain_status": lambda params: {
                "id": "local",
                "height": self.app.committed_height(),
                "consensus": "local",
                "peers": [],
                "halted": False,
            },
            "evm_mine": lambda params: self._mine(),
        }

    def _mine(self) -> int:
        """An empty block, for labs that need the chain to move on (``evm_mine`` as in Hardhat)."""
        app = self.app
        now = max(time.time(), app.head.header.timestamp + 1)
        block = app.build_block(app.committed_height() + 1, self.coinbase, now)
        app.commit_block(block, b"local")
        return app.committed_height()


class LocalChain:
    """An in-process minichain: py-evm state in memory, served through the real RPC dispatcher."""

    def __init__(self, chain_id: int = LOCAL_CHAIN_ID, extra_funded: Sequence[str] = ()) -> None:
        from eth_account import Account

        from labs.minichain.execution import ExecutionApp
        from labs.minichain.genesis import Account as Alloc
        from labs.minichain.genesis import Genesis, Validator
        from labs.minichain.rpc import RpcDispatcher
        from labs.minichain.storage import Store

        self.keys = [Account.from_key(k) for k in _local_keys()]
        genesis = Genesis(
            chain_id=chain_id,
            validators=[Validator(id="local", public_key="00" * 32)],
            identity_mode="permissionedWithKey",
            alloc={
                address: Alloc(balance=LOCAL_BALANCE)
                for address in [a.address for a in self.keys] + list(extra_funded)
            },
        )
        self.app = ExecutionApp(Store(":memory:"), genesis)
        self.node = _InstantNode(self.app)
        self.dispatcher = RpcDispatcher(self.app, self.node)

    def request(self, body: bytes) -> bytes:
        return self.dispatcher.handle(body) or b"null"


def _provider(chain: LocalChain) -> Any:
    from web3.providers.base import JSONBaseProvider

    class LocalProvider(JSONBaseProvider):
        """A web3 provider that hands JSON-RPC bytes straight to the in-process dispatcher."""

        def make_request(self, method: Any, params: Any) -> Any:
            return self.decode_rpc_response(chain.request(self.encode_rpc_request(method, params)))

        def make_batch_request(self, requests: Any) -> Any:
            return self.decode_rpc_response(chain.request(self.encode_batch_rpc_request(requests)))

        def is_connected(self, show_traceback: bool = False) -> bool:
            return True

    return LocalProvider()


_LOCAL: LocalChain | None = None


def local_chain() -> LocalChain:
    """The in-process chain of this interpreter (created on first use, then shared)."""
    global _LOCAL
    if _LOCAL is None:
        _LOCAL = LocalChain()
    return _LOCAL


def connect(url: str | None = None) -> Web3:
    """A ``web3.Web3`` for the learner's chain (``url``, else ``ACADEMY_RPC_URL``), or for the
    in-process chain when neither is given."""
    from web3 import Web3

    url = url or os.environ.get("ACADEMY_RPC_URL", "").strip()
    if url:
        return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    return Web3(_provider(local_chain()))


PARTNER_CHAIN_ID = 7002
_PARTNERS: dict[int, LocalChain] = {}


def connect_partner(chain_id: int = PARTNER_CHAIN_ID) -> Web3:
    """A ``web3.Web3`` for a second, independent in-process chain: the other institution's chain
    in cross-chain labs. Created on first use per chain id, then shared. The accounts
    :func:`accounts` returns are funded on it too (the learner's live keys as well, when live), so
    one signer acts on both chains."""
    from web3 import Web3

    if chain_id not in _PARTNERS:
        extra = [a.address for a in accounts()] if live() else []
        _PARTNERS[chain_id] = LocalChain(chain_id=chain_id, extra_funded=extra)
    return Web3(_provider(_PARTNERS[chain_id]))


def accounts() -> list[LocalAccount]:
    """Funded accounts on the chain :func:`connect` reaches, as ``eth_account`` signers.

    Live: the keys in ``ACADEMY_PRIVATE_KEYS`` (or the ``accounts.json`` file named by
    ``ACADEMY_ACCOUNTS_FILE``). Local: ten deterministic development keys.
    """
    from eth_account import Account

    if not live():
        return list(local_chain().keys)
    keys = [k.strip() for k in os.environ.get("ACADEMY_PRIVATE_KEYS", "").split(",") if k.strip()]
    path = os.environ.get("ACADEMY_ACCOUNTS_FILE", "").strip()
    if not keys and path:
        with open(path, encoding="utf-8") as fh:
            keys = [entry["private_key"] for entry in json.load(fh)]
    if not keys:
        raise LiveChainRequired(
            "no funded keys for your chain: ACADEMY_PRIVATE_KEYS is not set (ask your instructor)"
        )
    return [Account.from_key(k) for k in keys]


class ChainFaults:
    """The fault switches of a live multi-validator chain, by validator index (0-based).

    Each call is one ``minichain_*`` JSON-RPC method on the validator(s) concerned, exactly what
    ``curl`` would send; nothing here works on the in-process chain, which has one validator.
    """

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise LiveChainRequired(
                "fault switches need your live chain (ACADEMY_RPC_URLS is not set here); "
                "guard the cell with `if labs.client.live():`"
            )
        self.urls = list(urls)
        self._ids: list[str] | None = None

    def _rpc(self, index: int, method: str, params: list | None = None) -> Any:
        import httpx

        if not 0 <= index < len(self.urls):
            raise IndexError(
                f"validator {index}: this chain has validators 0..{len(self.urls) - 1}"
            )
        reply = httpx.post(
            self.urls[index],
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
            timeout=10.0,
        ).json()
        if "error" in reply:
            raise RuntimeError(f"validator {index}: {reply['error'].get('message')}")
        return reply["result"]

    @property
    def ids(self) -> list[str]:
        """Validator ids in index order (what ``minichain_partition`` takes)."""
        if self._ids is None:
            self._ids = [self._rpc(i, "minichain_status")["id"] for i in range(len(self.urls))]
        return self._ids

    def status(self, index: int) -> dict:
        return self._rpc(index, "minichain_status")

    def heights(self) -> list[int | None]:
        """Committed height of every validator (None for one that does not answer)."""
        out: list[int | None] = []
        for i in range(len(self.urls)):
            try:
                out.append(int(self._rpc(i, "minichain_status")["height"]))
            except Exception:  # a stopped process simply does not answer
                out.append(None)
        return out

    def consensus_state(self, index: int) -> dict:
        return self._rpc(index, "minichain_consensusState")

    def stop_validator(self, index: int) -> None:
        """Validator ``index`` stops taking part in consensus (its RPC still answers)."""
        self._rpc(index, "minichain_stopValidator")

    def resume_validator(self, index: int) -> None:
        self._rpc(index, "minichain_resumeValidator")

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        """Split the network: validators talk only within their group, e.g. ``[[0, 1], [2, 3]]``."""
        ids = self.ids
        member = {i: g for g, group in enumerate(groups) for i in group}
        for i in range(len(self.urls)):
            others = [ids[j] for j in range(len(ids)) if member.get(j, -1) != member.get(i, -2)]
            others = [o for o in others if o != ids[i]]
            self._rpc(i, "minichain_partition", [others])

    def heal(self) -> None:
        for i in range(len(self.urls)):
            self._rpc(i, "minichain_heal")

    def set_byzantine(self, index: int, mode: str | None) -> None:
        """Make validator ``index`` byzantine (``"equivocate"``, ``"silent"``, ``"bad_votes"``) or
        honest again (``None``)."""
        self._rpc(index, "minichain_setByzantine", [mode])

    def reset(self) -> None:
        """Every validator honest, running and connected again."""
        self.heal()
        for i in range(len(self.urls)):
            self.set_byzantine(i, None)
            self.resume_validator(i)


def faults() -> ChainFaults:
    """The fault switches of the learner's chain (``ACADEMY_RPC_URLS``)."""
    urls = [u.strip() for u in os.environ.get("ACADEMY_RPC_URLS", "").split(",") if u.strip()]
    if not urls and live():
        urls = [os.environ["ACADEMY_RPC_URL"].strip()]
    return ChainFaults(urls)
