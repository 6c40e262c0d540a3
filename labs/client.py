"""What a lab notebook imports to reach the learner's own chain: ``from labs.client import connect``.

Which chain: the one of the lab the notebook belongs to. Fetch puts a lab's files (its
``lab.toml`` among them) in ``~/<course>/<lab>/``; a notebook there asks academy (``ACADEMY_URL``
with ``ACADEMY_TOKEN``, set in the learner's server) for the learner's chain of that lab, which
academy starts on first use with the topology the lab asks for, and reuses after. A notebook
elsewhere uses the server's own chain: ``ACADEMY_RPC_URL`` (one validator's JSON-RPC),
``ACADEMY_RPC_URLS`` (all of them, comma-separated, for the fault switches) and funded keys in
``ACADEMY_PRIVATE_KEYS`` (comma-separated hex). :func:`use_lab` names a lab explicitly. A chain
with ChainMaker's orgs names its SDK configuration in ``ACADEMY_CHAINMAKER_SDK_CONFIG``, for
:func:`chainmaker_client`.

Where there is none of that -- notably in the grading sandbox, which has no network at all --
:func:`connect` gives an *in-process* minichain instead: the same execution layer (py-evm), the
same JSON-RPC dispatcher the real node serves, one block per transaction, and ten funded
accounts. A graded cell therefore behaves the same on the learner's chain and in the grader, and
a cell that needs a live multi-validator chain (faults, consensus experiments) checks
:func:`live` first, so grading never depends on one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

__all__ = [
    "ChainFaults",
    "LiveChainRequired",
    "accounts",
    "chainmaker_client",
    "connect",
    "connect_partner",
    "faults",
    "lab_env",
    "live",
    "local_chain",
    "notebook_lab",
    "use_lab",
]

LOCAL_CHAIN_ID = 1337
LOCAL_ACCOUNTS = 10
LOCAL_BALANCE = 10**24  # one million ether each, like `academy chain init`


class LiveChainRequired(RuntimeError):
    """A cell asked for the learner's live chain where there is none (e.g. while grading)."""


# -- which chain: the lab this notebook belongs to ---------------------------------------------
LAB_START_TIMEOUT = 180.0
"""Seconds academy may take to start a lab's chain the first time (four validators: seconds)."""
REFRESH_EVERY = 300.0
"""A notebook working with its lab's chain tells academy this often (the idle cull then leaves
the chain alone), and so learns the new URLs of a chain that was stopped and started again."""

_chosen: str | None = None
_labs: dict[str, tuple[float, dict[str, str]]] = {}


def use_lab(lab: str | None) -> None:
    """Work with the chain of ``lab`` (``"course/lab"``, e.g. ``"consensus/tbft"``) from now on in
    this kernel; ``None`` goes back to the notebook's own lab."""
    global _chosen
    if lab is not None and lab.count("/") != 1:
        raise ValueError(f"name the lab as 'course/lab', e.g. 'consensus/tbft' (not {lab!r})")
    _chosen = lab


def notebook_lab() -> str | None:
    """``"course/lab"`` of the notebook this kernel runs, or None outside a lab folder.

    A lab folder holds the lab's ``lab.toml`` (Fetch puts it in ``~/<course>/<lab>/``); the kernel
    runs in the notebook's folder (``JPY_SESSION_NAME`` names the notebook when Jupyter sets it).
    A notebook moved elsewhere still names its lab in the metadata Fetch wrote into it. Else
    ``ACADEMY_LAB``, the lab the server started with.
    """
    import json
    import tomllib
    from pathlib import Path

    if _chosen:
        return _chosen
    folders = [Path.cwd()]
    session = os.environ.get("JPY_SESSION_NAME", "").strip()
    if session:
        folders.insert(0, Path(session).parent)
    for folder in folders:
        spec = folder / "lab.toml"
        if spec.is_file():
            try:
                lab = tomllib.loads(spec.read_text(encoding="utf-8")).get("lab", {}).get("id")
            except (OSError, ValueError):
                lab = None
            return f"{folder.resolve().parent.name}/{lab or folder.name}"
    if session.endswith(".ipynb"):
        try:
            meta = json.loads(Path(session).read_text(encoding="utf-8"))["metadata"]["academy"]
            return f"{meta['course']}/{meta['lab']}"
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return os.environ.get("ACADEMY_LAB", "").strip() or None


def _academy() -> tuple[str, str] | None:
    url = os.environ.get("ACADEMY_URL", "").strip().rstrip("/")
    token = os.environ.get("ACADEMY_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN") or ""
    return (url, token) if url and token else None


def _server_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("ACADEMY_")}


def lab_env(lab: str | None = None, refresh: bool = False) -> dict[str, str]:
    """The ``ACADEMY_*`` chain variables this notebook works with (see the module docstring).

    For a lab (``lab`` or :func:`notebook_lab`) beside academy: the learner's chain of that lab,
    started by academy if it is not running (``POST /api/me/labs/<course>/<lab>/env``), asked
    again every :data:`REFRESH_EVERY` seconds or when ``refresh``. Otherwise the server's own
    variables; none at all in the grading sandbox.
    """
    where = _academy()
    if where is not None:
        lab = lab or notebook_lab()
    if where is None or lab is None:
        return _server_env()
    cached = _labs.get(lab)
    if cached and not refresh and time.monotonic() - cached[0] < REFRESH_EVERY:
        return cached[1]
    try:
        env = _ask_academy(*where, lab, first=cached is None)
    except LiveChainRequired:
        if cached:  # academy busy for a moment: keep working with the chain we know
            return cached[1]
        raise
    _labs[lab] = (time.monotonic(), env)
    return env


def _ask_academy(url: str, token: str, lab: str, first: bool) -> dict[str, str]:
    import httpx

    course, _, lab_id = lab.partition("/")
    try:
        reply = httpx.post(
            f"{url}/api/me/labs/{course}/{lab_id}/env",
            headers={"Authorization": f"token {token}"},
            timeout=LAB_START_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise LiveChainRequired(
            f"academy at {url} did not answer ({exc}): run the cell again in a moment"
        ) from None
    try:
        body = reply.json()
    except ValueError:
        body = {"detail": reply.text[:200]}
    if reply.status_code == 404:
        # not a lab of this learner (a copied folder, say): the server's own chain, as before
        if first:
            print(f"{body.get('detail')}: using your server's chain")
        return _server_env()
    if reply.status_code >= 400:
        raise LiveChainRequired(f"your chain for {lab}: {body.get('detail') or reply.status_code}")
    if first:
        if body.get("validators"):
            print(
                f"your chain for {lab}: {body['validators']} {body.get('consensus')} "
                f"validator(s), explorer {body.get('explorer_url') or '-'}"
            )
        else:
            print(f"lab {lab} needs no chain of its own: an in-process chain stands in")
    return {str(k): str(v) for k, v in (body.get("environment") or {}).items()}


def _var(name: str) -> str:
    return lab_env().get(name, "").strip()


def live() -> bool:
    """True when this notebook runs beside the learner's live chain (its lab's, or the server's)."""
    return bool(_var("ACADEMY_RPC_URL"))


def chainmaker_client(org: int = 1, user: str = "client1") -> Any:
    """An official ChainMaker SDK ``ChainClient`` for the learner's chain, signing as ``user``
    (``client1`` or ``admin1``) of org ``org`` (``wx-org<org>.chainmaker.org``).

    It reads the chain's ``sdk_config.yml`` (``ACADEMY_CHAINMAKER_SDK_CONFIG``) as the SDK
    would, and only swaps in another member's certificates (or, on a permissionedWithKey chain,
    key file), which sit beside the ones it names in ChainMaker's ``crypto-config/`` layout;
    governance labs ask for admins of several orgs.
    """
    from pathlib import Path

    import yaml
    from chainmaker import ChainClient

    path = _var("ACADEMY_CHAINMAKER_SDK_CONFIG")
    if not path:
        raise LiveChainRequired(
            "no ChainMaker SDK configuration for your chain (ACADEMY_CHAINMAKER_SDK_CONFIG is not "
            "set): start the lab's chain from academy, or point it at DIR/chainmaker/sdk_config.yml"
        )
    document = yaml.safe_load(Path(path).read_text())
    client = document["chain_client"]
    org_id = f"wx-org{org}.chainmaker.org"
    crypto = Path(client["user_sign_key_file_path"]).parents[3]
    folder = crypto / org_id / "user" / user
    if not folder.is_dir():
        raise ValueError(
            f"no member {user} in org {org_id} ({folder} is missing): use client1 or admin1 "
            f"of one of the chain's orgs"
        )
    if "user_sign_crt_file_path" not in client:  # permissionedWithKey: a member is a key pair
        client.update(org_id=org_id, user_sign_key_file_path=str(folder / f"{user}.key"))
        return ChainClient.from_conf(document)
    client.update(
        org_id=org_id,
        user_key_file_path=str(folder / f"{user}.tls.key"),
        user_crt_file_path=str(folder / f"{user}.tls.crt"),
        user_sign_key_file_path=str(folder / f"{user}.sign.key"),
        user_sign_crt_file_path=str(folder / f"{user}.sign.crt"),
    )
    return ChainClient.from_conf(document)


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
    """A ``web3.Web3`` for ``url``, else for the learner's chain of this notebook's lab (see
    :func:`lab_env`), else for the in-process chain."""
    from web3 import Web3

    if url:
        return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    if live():
        return Web3(_chain_provider(notebook_lab()))
    return Web3(_provider(local_chain()))


def _chain_provider(lab: str | None) -> Any:
    import requests
    from eth_typing import URI
    from web3 import HTTPProvider

    class LabChainProvider(HTTPProvider):
        """HTTP to the learner's chain that keeps following it: every request first takes the
        chain's URL from :func:`lab_env` (which tells academy the chain is in use every few
        minutes); a chain that does not answer (stopped while idle, started again on other ports)
        is asked for again once. A chain that cannot be reached yet -- its name not yet in the
        network's DNS, which on some engines lags a container's start by seconds, or its port
        not yet open -- is tried again for up to :data:`CONNECT_GRACE` seconds; only requests
        that never reached the chain are repeated."""

        def _make_request(self, method: Any, request_data: bytes) -> bytes:
            current = lab_env(lab).get("ACADEMY_RPC_URL")
            if current:
                self.endpoint_uri = URI(current)
            try:
                return super()._make_request(method, request_data)
            except requests.ConnectionError:
                fresh = lab_env(lab, refresh=True).get("ACADEMY_RPC_URL")
                if not fresh:
                    raise
                self.endpoint_uri = URI(fresh)
            deadline = time.monotonic() + CONNECT_GRACE
            pause = 0.2
            while True:
                try:
                    return super()._make_request(method, request_data)
                except requests.ConnectionError as exc:
                    if not _never_connected(exc) or time.monotonic() + pause > deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    return LabChainProvider(lab_env(lab)["ACADEMY_RPC_URL"], request_kwargs={"timeout": 30})


CONNECT_GRACE = 20.0
"""Seconds a request keeps trying a chain it cannot connect to (see ``LabChainProvider``)."""


def _never_connected(exc: Exception) -> bool:
    """Whether a requests error means no connection was made (unknown name, refused), so the
    request never reached the chain and sending it again cannot apply it twice."""
    from urllib3.exceptions import NewConnectionError

    cause = exc.args[0] if exc.args else None
    return isinstance(getattr(cause, "reason", cause), NewConnectionError)


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

    Live: the keys in ``ACADEMY_PRIVATE_KEYS`` of :func:`lab_env` (or the ``accounts.json`` file
    named by ``ACADEMY_ACCOUNTS_FILE``). Local: ten deterministic development keys.
    """
    from eth_account import Account

    if not live():
        return list(local_chain().keys)
    keys = [k.strip() for k in _var("ACADEMY_PRIVATE_KEYS").split(",") if k.strip()]
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

    def __init__(
        self, urls: Sequence[str], refresh: Callable[[], Sequence[str]] | None = None
    ) -> None:
        if not urls:
            raise LiveChainRequired(
                "fault switches need your live chain (ACADEMY_RPC_URLS is not set here); "
                "guard the cell with `if labs.client.live():`"
            )
        self.urls = list(urls)
        self._refresh = refresh
        self._ids: list[str] | None = None

    def _rpc(self, index: int, method: str, params: list | None = None) -> Any:
        import httpx

        from labs.minichain.jsonrpc import RpcReplyError, call

        if not 0 <= index < len(self.urls):
            raise IndexError(
                f"validator {index}: this chain has validators 0..{len(self.urls) - 1}"
            )
        try:
            try:
                return call(self.urls[index], method, params, timeout=10.0)
            except httpx.ConnectError:
                # the whole chain stopped (idle) and started again elsewhere: follow it once
                fresh = list(self._refresh()) if self._refresh else []
                if len(fresh) != len(self.urls) or fresh == self.urls:
                    raise
                self.urls = fresh
                return call(self.urls[index], method, params, timeout=10.0)
        except RpcReplyError as exc:
            raise RuntimeError(f"validator {index}: {exc}") from None

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
    """The fault switches of the learner's chain (``ACADEMY_RPC_URLS`` of :func:`lab_env`)."""
    lab = notebook_lab()

    def urls(refresh: bool = False) -> list[str]:
        env = lab_env(lab, refresh=refresh)
        found = [u.strip() for u in env.get("ACADEMY_RPC_URLS", "").split(",") if u.strip()]
        one = env.get("ACADEMY_RPC_URL", "").strip()
        return found or ([one] if one else [])

    return ChainFaults(urls(), refresh=lambda: urls(refresh=True))
