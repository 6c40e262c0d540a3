"""labs.client: what lab notebooks import to reach the learner's chain.

Locally (no ACADEMY_RPC_URL, as in the grading sandbox) it is an in-process minichain behind the
real JSON-RPC dispatcher; beside a live chain it is web3 over HTTP plus the fault switches. The
live test takes the environment exactly as the sandbox manager hands it to the learner's server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

import labs.client as client
from labs.minichain.ports import free_port
from labs.minichain.waiting import wait_until
from labs.sandbox import LabSpec, SandboxManager


def _pay(w3, sender, to: str, value: int) -> dict:
    tx = {
        "to": to,
        "value": value,
        "gas": 21000,
        "nonce": w3.eth.get_transaction_count(sender.address),
        "chainId": w3.eth.chain_id,
        "maxFeePerGas": 2 * w3.eth.gas_price,
        "maxPriorityFeePerGas": 10**9,
    }
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)


def test_local_chain_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ACADEMY_RPC_URL", "ACADEMY_RPC_URLS", "ACADEMY_PRIVATE_KEYS"):
        monkeypatch.delenv(var, raising=False)
    assert not client.live()
    w3 = client.connect()
    alice, bob = client.accounts()[:2]
    assert w3.eth.chain_id == client.LOCAL_CHAIN_ID and len(client.accounts()) == 10
    before, height = w3.eth.get_balance(bob.address), w3.eth.block_number
    receipt = _pay(w3, alice, bob.address, 12345)
    assert receipt["status"] == 1 and receipt["blockNumber"] == height + 1
    assert w3.eth.get_balance(bob.address) == before + 12345
    latest = w3.eth.get_block("latest")
    assert latest["parentHash"] == w3.eth.get_block(height)["hash"]
    # a transaction the chain refuses is an error, as on a real node
    with pytest.raises(Exception, match="nonce"):
        stale = {**dict(nonce=0, to=bob.address, value=1, gas=21000, chainId=1337)}
        stale.update(maxFeePerGas=2 * w3.eth.gas_price, maxPriorityFeePerGas=10**9)
        w3.eth.send_raw_transaction(alice.sign_transaction(stale).raw_transaction)
    with pytest.raises(client.LiveChainRequired, match="ACADEMY_RPC_URLS"):
        client.faults()


@pytest.fixture(scope="module")
def live_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("lab") / "faults"
    folder.mkdir()
    (folder / "lab.toml").write_text(
        '[lab]\nid = "faults"\ntitle = "Faults"\n[chain]\nvalidators = 4\nconsensus = "tbft"\n'
        'faults = ["stopValidator", "partition", "setByzantine"]\n'
    )
    manager = SandboxManager(state_dir=str(tmp_path_factory.mktemp("sandbox")))
    env = manager.ensure("learner-client-test", LabSpec.from_toml(folder / "lab.toml"))
    try:
        yield env.environment()
    finally:
        manager.destroy(env.learner, env.lab_id)


def _wait(predicate, timeout: float = 60.0) -> None:
    wait_until(predicate, timeout, interval=0.2)


@pytest.mark.slow
def test_live_chain_and_fault_switches(
    live_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value in live_env.items():
        monkeypatch.setenv(var, value)
    assert client.live()
    w3 = client.connect()
    keys = client.accounts()
    assert w3.eth.get_balance(keys[0].address) > 0
    assert _pay(w3, keys[0], keys[1].address, 7)["status"] == 1
    sw = client.faults()
    assert len(sw.urls) == 4 and len(set(sw.ids)) == 4
    sw.stop_validator(3)  # one of four stopped: 3 >= 2f+1 still commit
    start = sw.heights()[0]
    _wait(lambda: (sw.heights()[0] or 0) >= start + 2)
    sw.stop_validator(2)  # two of four stopped: no quorum, the chain halts
    time.sleep(1.5)
    halted = sw.heights()[0]
    time.sleep(2.5)
    assert sw.heights()[0] == halted
    sw.resume_validator(2)
    sw.resume_validator(3)
    _wait(lambda: (sw.heights()[0] or 0) >= halted + 2)
    sw.partition([[0, 1], [2, 3]])  # 2|2: neither side has a quorum
    assert sw.status(0)["partitioned_from"] == sorted([sw.ids[2], sw.ids[3]])
    sw.heal()
    sw.set_byzantine(3, "equivocate")
    assert sw.status(3)["byzantine"] == "equivocate"
    now = sw.heights()[0] or 0
    _wait(lambda: (sw.heights()[0] or 0) >= now + 2)  # one byzantine of four is tolerated
    sw.reset()
    assert all(sw.status(i)["byzantine"] is None for i in range(4))
    assert os.environ["ACADEMY_LAB_ID"] == "faults"


class LateListener:
    """A TCP forwarder to a real chain that opens its port only after ``delay`` seconds: a chain
    whose container has started but cannot be reached yet (name not yet in DNS, port shut)."""

    def __init__(self, target: str, delay: float) -> None:
        from urllib.parse import urlparse

        url = urlparse(target)
        self.target = (url.hostname, url.port)
        self.port = free_port()
        self.timer = threading.Timer(delay, self._open)
        self.timer.start()
        self.server: socket.socket | None = None

    def _open(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        assert self.server is not None
        while True:
            try:
                down, _ = self.server.accept()
            except OSError:
                return
            up = socket.create_connection(self.target)
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.timer.cancel()
        if self.server is not None:
            self.server.close()


@pytest.mark.slow
def test_a_chain_not_reachable_yet_is_waited_for_then_given_up_on(
    live_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On some engines a new container's name reaches the network's DNS seconds after it starts:
    a notebook's first request waits for its chain instead of failing; one that never comes
    fails after the grace period, with the connection error."""
    for var, value in live_env.items():
        monkeypatch.setenv(var, value)
    late = LateListener(live_env["ACADEMY_RPC_URL"], delay=1.5)
    try:
        monkeypatch.setenv("ACADEMY_RPC_URL", f"http://127.0.0.1:{late.port}")
        began = time.monotonic()
        assert client.connect().eth.block_number >= 0
        assert time.monotonic() - began >= 1.0  # it did wait for the port to open
    finally:
        late.close()
    monkeypatch.setattr(client, "CONNECT_GRACE", 1.0)
    never = LateListener(live_env["ACADEMY_RPC_URL"], delay=3600)
    try:
        monkeypatch.setenv("ACADEMY_RPC_URL", f"http://127.0.0.1:{never.port}")
        began = time.monotonic()
        with pytest.raises(requests.ConnectionError):
            client.connect().eth.block_number  # noqa: B018
        assert 0.5 <= time.monotonic() - began < 10
    finally:
        never.close()
