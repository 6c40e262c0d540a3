"""Shared pieces of the sandbox tests: a lab folder with a preloaded contract, RPC and web3 calls."""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address

from labs.minichain.jsonrpc import call

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"

LAB_TOML = """
[lab]
id = "{lab_id}"
title = "Counters on your own chain"

[chain]
validators = {validators}
consensus = "tbft"
identity = "permissionedWithCert"
faults = ["stopValidator", "partition"]
preload = [ {{ contract = "Counter.vy", name = "Counter", args = [7] }} ]
"""

COUNT_SELECTOR = "0x06661abd"  # count()
BUMP_SELECTOR = "0xb20eb4c4"  # bump(uint256)


def make_lab(folder: Path, lab_id: str = "counters", validators: int = 4) -> Path:
    """A lab folder as a course holds it: lab.toml plus the contract it preloads."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONTRACTS / "Counter.vy", folder / "Counter.vy")
    path = folder / "lab.toml"
    path.write_text(LAB_TOML.format(lab_id=lab_id, validators=validators))
    return path


def rpc(url: str, method: str, params: list | None = None, timeout: float = 10.0) -> Any:
    return call(url, method, params, timeout)


def counter_value(url: str, address: str) -> int:
    return int(rpc(url, "eth_call", [{"to": address, "data": COUNT_SELECTOR}, "latest"]), 16)


def signed_transfer(url: str, private_key: str, to: str, value: int) -> str:
    """Sign a plain transfer and send it; returns the transaction hash."""
    acct = Account.from_key(private_key)
    tx = {
        "nonce": int(rpc(url, "eth_getTransactionCount", [acct.address, "pending"]), 16),
        "gas": 21_000,
        "gasPrice": int(rpc(url, "eth_gasPrice"), 16),
        "to": to_checksum_address(to),
        "value": value,
        "chainId": int(rpc(url, "eth_chainId"), 16),
    }
    raw = acct.sign_transaction(tx).raw_transaction
    return rpc(url, "eth_sendRawTransaction", ["0x" + raw.hex()])


# What a learner's container can reach: each (host, port) is "open", "no-name" (the name does not
# resolve) or the error a connection got; also whether any default route exists. A lookup that
# fails with EAI_AGAIN ("temporary failure": the network's DNS server dropped the query, as
# podman 4.3's aardvark-dns does while it reloads for another container's start) is asked again
# for a while; an unknown name fails at once with EAI_NONAME.
PROBE = r"""
import json, socket, sys, time
out = {}
for host, port in json.loads(sys.argv[1]):
    key = f"{host}:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection((host, port), timeout=3):
                out[key] = "open"
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_AGAIN and time.monotonic() < deadline:
                time.sleep(0.3)
                continue
            out[key] = "no-name"
        except OSError as exc:
            out[key] = type(exc).__name__
        break
routes = open("/proc/net/route").read().splitlines()[1:]
out["default_route"] = any(r.split()[1] == "00000000" for r in routes)
print(json.dumps(out))
"""


class HostServer:
    """A TCP server on the host's address in one learner network: would anything outside answer?"""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket()
        self.sock.bind((address, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()
