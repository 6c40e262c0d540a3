"""A real minichain network of OS processes on loopback, for tests that kill and restart validators."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
from eth_account import Account
from web3 import Web3

from labs.minichain.netconfig import NetworkConfig, init_network
from labs.minichain.network import (
    kill_node,
    rpc,
    start_network,
    start_node,
    stop_network,
    wait_ready,
)
from labs.minichain.waiting import wait_until


class Net:
    def __init__(
        self, root: Path, nodes: int, consensus: str, params: dict | None = None, **kw
    ) -> None:
        self.root = root
        init_network(root, nodes=nodes, consensus=consensus, params=params, **kw)
        self.cfg: NetworkConfig = start_network(root)
        self.accounts = self.cfg.accounts()

    # -- processes -----------------------------------------------------------------------------
    def kill(self, i: int) -> None:
        kill_node(self.cfg, i, signal.SIGKILL)

    def start(self, i: int) -> None:
        start_node(self.cfg, i)
        wait_ready(self.cfg, [i])

    def stop(self) -> None:
        stop_network(self.root)

    def running(self) -> list[int]:
        return [i for i, n in enumerate(self.cfg.nodes) if n.pid]

    # -- views ---------------------------------------------------------------------------------
    def url(self, i: int) -> str:
        return self.cfg.rpc_url(i)

    def call(self, i: int, method: str, params: list | None = None):
        return rpc(self.url(i), method, params)

    def w3(self, i: int = 0) -> Web3:
        return Web3(Web3.HTTPProvider(self.url(i), request_kwargs={"timeout": 30}))

    def height(self, i: int) -> int:
        return int(self.call(i, "eth_blockNumber"), 16)

    def heights(self, nodes: list[int] | None = None) -> dict[int, int]:
        return {i: self.height(i) for i in (self.running() if nodes is None else nodes)}

    def block_hash(self, i: int, height: int) -> str | None:
        b = self.call(i, "eth_getBlockByNumber", [hex(height), False])
        return b["hash"] if b else None

    def wait_height(
        self, target: int, nodes: list[int] | None = None, timeout: float = 60.0
    ) -> dict[int, int]:
        hs: dict[int, int] = {}

        def reached() -> dict[int, int] | None:
            hs.clear()
            hs.update(self.heights(nodes))
            return dict(hs) if all(h >= target for h in hs.values()) else None

        return wait_until(
            reached,
            timeout,
            interval=0.2,
            message=lambda: f"heights {hs} did not reach {target} within {timeout} s",
        )

    def assert_same_chain(self, nodes: list[int], upto: int) -> None:
        for h in range(1, upto + 1):
            hashes = {i: self.block_hash(i, h) for i in nodes}
            assert len(set(hashes.values())) == 1, f"fork at height {h}: {hashes}"


class Load:
    """A steady stream of signed transfers, sent round-robin to the running nodes."""

    def __init__(self, net: Net, rate: float = 20.0, account: int = 0) -> None:
        self.net = net
        self.rate = rate
        self.acct = Account.from_key(net.accounts[account]["private_key"])
        self.to = net.accounts[(account + 1) % len(net.accounts)]["address"]
        self.sent = 0
        self.accepted: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _nonce(self) -> int:
        for i in self.net.running():
            try:
                return int(
                    self.net.call(i, "eth_getTransactionCount", [self.acct.address, "pending"]), 16
                )
            except (httpx.HTTPError, RuntimeError):
                continue
        raise RuntimeError("no node answers")

    def _run(self) -> None:
        nonce = self._nonce()
        chain_id = 1337
        target = self.net.running()[0]
        while not self._stop.is_set():
            tx = self.acct.sign_transaction(
                {
                    "to": self.to,
                    "value": 1,
                    "gas": 21000,
                    "maxFeePerGas": 10**10,
                    "maxPriorityFeePerGas": 10**9,
                    "nonce": nonce,
                    "chainId": chain_id,
                    "type": 2,
                }
            )
            # One account's transactions go to one node (in nonce order); move on only when it is down.
            if target not in self.net.running():
                target = self.net.running()[0]
            try:
                h = self.net.call(
                    target, "eth_sendRawTransaction", ["0x" + tx.raw_transaction.hex()]
                )
                self.accepted.append(h)
                nonce += 1
            except RuntimeError as exc:
                self.errors.append(str(exc))
                if "nonce" in str(exc):
                    nonce = self._nonce()
            except httpx.HTTPError as exc:
                self.errors.append(repr(exc))
                alive = [i for i in self.net.running() if i != target]
                target = alive[0] if alive else target
            self.sent += 1
            time.sleep(1.0 / self.rate)
