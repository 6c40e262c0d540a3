"""A one-process dev chain for execution, storage and RPC tests: real py-evm, SQLite and aiohttp.

``InstantNode`` commits a block after every accepted transaction (a consensus of one), which is all
the RPC tests need; ``RpcServer`` serves the dispatcher over HTTP on a random loopback port.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from labs.minichain.execution import ExecutionApp
from labs.minichain.genesis import Genesis, Validator
from labs.minichain.rpc import RpcDispatcher, make_rpc_app
from labs.minichain.storage import Store

CHAIN_ID = 1337
COINBASE = bytes.fromhex("c0" * 20)
FUNDED = 10**24
KEYS: list[LocalAccount] = [Account.from_key(bytes([i + 1]) * 32) for i in range(4)]


def make_genesis(**overrides: Any) -> Genesis:
    fields: dict[str, Any] = {
        "chain_id": CHAIN_ID,
        "validators": [Validator(id="v0", public_key="00" * 32)],
        "identity_mode": "permissionedWithKey",
        "alloc": {k.address: {"balance": FUNDED} for k in KEYS},
    }
    fields.update(overrides)
    return Genesis(**fields)


def open_app(folder: Path, genesis: Genesis | None = None, **params: Any) -> ExecutionApp:
    folder.mkdir(parents=True, exist_ok=True)
    return ExecutionApp(Store(folder / "chain.db"), genesis or make_genesis(), **params)


def transfer(
    key: LocalAccount,
    nonce: int,
    to: str | None = "0x" + "11" * 20,
    value: int = 1,
    *,
    legacy: bool = False,
    **fields: Any,
) -> bytes:
    """Raw bytes of a signed transfer (EIP-1559 unless ``legacy``; ``to=None`` creates)."""
    tx: dict[str, Any] = {
        "value": value,
        "gas": 21000,
        "nonce": nonce,
        "chainId": CHAIN_ID,
    }
    if legacy:
        tx["gasPrice"] = 2 * 10**9
    else:
        tx.update(maxFeePerGas=3 * 10**9, maxPriorityFeePerGas=10**9, type=2)
    if to is not None:
        tx["to"] = to_checksum_address(to)
    tx.update(fields)
    return bytes(key.sign_transaction(tx).raw_transaction)


def commit_next(app: ExecutionApp, coinbase: bytes = COINBASE) -> Any:
    block = app.build_block(app.committed_height() + 1, coinbase, time.time())
    app.commit_block(block, b"proof-%d" % block.height)
    return block


class InstantNode:
    """Stands in for a node: every accepted transaction is committed in its own block at once."""

    coinbase = COINBASE

    def __init__(self, app: ExecutionApp) -> None:
        self.app = app

    def submit_transaction(self, raw: bytes) -> bytes:
        tx_hash = self.app.check_tx(raw)
        commit_next(self.app)
        return tx_hash

    def rpc_methods(self) -> dict[str, Any]:
        return {"minichain_status": lambda params: {"height": self.app.committed_height()}}


class RpcServer:
    """The aiohttp JSON-RPC app on 127.0.0.1 (random port) in a background thread."""

    def __init__(self, dispatcher: RpcDispatcher) -> None:
        self.dispatcher = dispatcher
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(make_rpc_app(self.dispatcher, max_body=256 * 1024))
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._runner = runner
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> RpcServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the RPC server did not start within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
