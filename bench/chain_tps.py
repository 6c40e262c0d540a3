"""End-to-end committed transactions per second, beside raw py-evm measured in the same run.

Signed EIP-1559 transfers are made up front, then sent over JSON-RPC (batched requests, each sender's
transactions to one node, in nonce order) to a real network of validator processes on loopback; a
transaction counts once its sender's committed nonce shows it included. The anchor is plain py-evm
applying the very same transactions in blocks of the same size, in this process, in this run.

Goals: solo >= 60 % of raw; tbft with 4 validators >= 25 % of raw (they share two cores).

The ChainMaker SDK path: the official SDK sends signed contract invokes over gRPC (mutual TLS,
one client per node, in threads) to a 4-org tbft-4 chain; an invoke counts once the contract's
counter shows it. Its anchor is plain py-evm running the same contract call as a message on an
in-memory state, in this process, in this run. Goal: >= 40 % of raw.

    .venv/bin/python bench/chain_tps.py [--txs 2000] [--senders 20] [--invokes 600]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_typing import Address

from bench.raw_evm import raw_apply_rate
from labs.minichain.genesis import load_genesis
from labs.minichain.netconfig import init_network
from labs.minichain.network import start_network, stop_network
from labs.minichain.waiting import wait_until

BLOCK_SIZE = 500
BATCH = 100


def make_transfers(accounts: list[dict], per_sender: int, chain_id: int) -> list[list[bytes]]:
    """Per sender, ``per_sender`` signed transfers with consecutive nonces."""
    out = []
    for k, a in enumerate(accounts):
        acct = Account.from_key(a["private_key"])
        to = accounts[(k + 1) % len(accounts)]["address"]
        txs = []
        for nonce in range(per_sender):
            signed = acct.sign_transaction(
                {
                    "to": to,
                    "value": 1,
                    "gas": 21000,
                    "maxFeePerGas": 10**11,
                    "maxPriorityFeePerGas": 10**9,
                    "nonce": nonce,
                    "chainId": chain_id,
                    "type": 2,
                }
            )
            txs.append(bytes(signed.raw_transaction))
        out.append(txs)
    return out


def _post(client: httpx.Client, url: str, batch: list[dict]) -> list[dict]:
    reply = client.post(
        url, content=json.dumps(batch), headers={"content-type": "application/json"}
    )
    return reply.json()


def run_network(consensus: str, nodes: int, senders: int, per_sender: int, params: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "chain"
        init_network(root, nodes=nodes, consensus=consensus, accounts=senders, params=params)
        cfg = start_network(root)
        try:
            genesis = load_genesis(cfg.genesis_path)
            accounts = cfg.accounts()
            per = make_transfers(accounts, per_sender, genesis.chain_id)
            urls = [cfg.rpc_url(i) for i in range(nodes)]
            # Interleave senders so that every node gets work from the first batch on.
            requests: dict[str, list[dict]] = {u: [] for u in urls}
            for n in range(per_sender):
                for k, txs in enumerate(per):
                    requests[urls[k % nodes]].append(
                        {
                            "jsonrpc": "2.0",
                            "id": len(requests[urls[k % nodes]]),
                            "method": "eth_sendRawTransaction",
                            "params": ["0x" + txs[n].hex()],
                        }
                    )
            total = senders * per_sender
            errors = 0
            with httpx.Client(timeout=120) as client:
                started = time.perf_counter()
                pending = {u: list(reqs) for u, reqs in requests.items()}
                while any(pending.values()):
                    for u in urls:
                        if pending[u]:
                            batch, pending[u] = pending[u][:BATCH], pending[u][BATCH:]
                            errors += sum(1 for r in _post(client, u, batch) if "error" in r)
                sent_at = time.perf_counter()
                addresses = [a["address"] for a in accounts]
                batch = [
                    {
                        "jsonrpc": "2.0",
                        "id": i,
                        "method": "eth_getTransactionCount",
                        "params": [addr, "latest"],
                    }
                    for i, addr in enumerate(addresses)
                ]
                done = [0]

                def all_committed() -> bool:
                    done[0] = sum(int(r["result"], 16) for r in _post(client, urls[0], batch))
                    return done[0] >= total - errors

                try:
                    wait_until(all_committed, started + 600 - time.perf_counter(), interval=0.05)
                except TimeoutError:
                    raise SystemExit(
                        f"{consensus}: only {done[0]}/{total} committed after 600 s"
                    ) from None
                elapsed = time.perf_counter() - started
        finally:
            stop_network(root)
    return {
        "tps": (total - errors) / elapsed,
        "elapsed": elapsed,
        "send": sent_at - started,
        "errors": errors,
        "txs": total,
        "per": per,
        "genesis": genesis,
    }


COUNTER = """
pragma solidity ^0.8.20;
contract Counter {
    uint256 public total;
    function add(uint256 n) public { total += n; }
}
"""


def raw_invoke_rate(genesis: Any, bytecode: bytes, call: bytes, count: int) -> float:
    """Contract calls per second that plain py-evm runs as messages on an in-memory state."""
    from eth.chains.base import ChainContext
    from eth.db.atomic import AtomicDB

    from labs.minichain.blocks import VM, build_genesis
    from labs.minichain.chainmaker.auth import contract_address
    from labs.minichain.chainmaker.executor import run_message

    db = AtomicDB()
    head = build_genesis(db, genesis).header
    state = VM.build_state(db, head, ChainContext(genesis.chain_id), ())
    sender = Address(b"\x11" * 20)
    at = Address(contract_address("counter"))
    assert not run_message(state, sender, None, bytecode, 10**7, at).is_error
    started = time.perf_counter()
    for _ in range(count):
        assert not run_message(state, sender, at, call, 10**7, None).is_error
    return count / (time.perf_counter() - started)


def run_sdk(invokes: int, threads: int = 4) -> dict:
    """Invokes per second through the official ChainMaker SDK on a 4-org tbft-4 chain."""
    from chainmaker import ChainClient
    from chainmaker.keys import RuntimeType
    from chainmaker.utils.evm_utils import calc_evm_method_params

    from labs.minichain.contracts import compile_solidity

    compiled = compile_solidity(COUNTER, contract="Counter")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "chain"
        init_network(root, nodes=4, consensus="tbft", orgs=4, accounts=1)
        cfg = start_network(root)
        try:
            sdk_config = str(cfg.sdk_config_path)
            admin = ChainClient.from_conf(sdk_config)
            binary = Path(tmp) / "counter.bin"
            binary.write_text(compiled.bytecode[2:])
            payload = admin.create_contract_create_payload(
                "counter", "1.0", str(binary), RuntimeType.EVM
            )
            crypto = cfg.crypto_config
            endorsers = admin.create_endorsers(
                payload,
                [
                    {
                        "org_id": f"wx-org{i}.chainmaker.org",
                        "user_sign_crt_file_path": f"{crypto}/wx-org{i}.chainmaker.org/user/admin1/admin1.sign.crt",
                        "user_sign_key_file_path": f"{crypto}/wx-org{i}.chainmaker.org/user/admin1/admin1.sign.key",
                    }
                    for i in (1, 2, 3)
                ],
            )
            created = admin.send_contract_manage_request(payload, endorsers, with_sync_result=True)
            assert created.code == 0, created.message
            add, add_params = calc_evm_method_params("add", [{"uint256": "1"}])
            total, total_params = calc_evm_method_params("total", [])
            clients = [ChainClient.from_conf(sdk_config, conn_node=i % 4) for i in range(threads)]
            for c in clients:
                c.disable_log()
            admin.disable_log()
            share = [
                invokes // threads + (1 if i < invokes % threads else 0) for i in range(threads)
            ]
            errors: list[str] = []

            def send(client: Any, count: int) -> None:
                for _ in range(count):
                    try:
                        client.send_tx_request(client.get_tx_request("counter", add, add_params))
                    except Exception as exc:  # counted, the run goes on
                        errors.append(repr(exc))

            started = time.perf_counter()
            workers = [
                threading.Thread(target=send, args=(c, n))
                for c, n in zip(clients, share, strict=True)
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            target = invokes - len(errors)

            def counted() -> bool:
                result = admin.query_contract("counter", total, total_params).contract_result.result
                return int.from_bytes(result, "big") >= target

            wait_until(counted, 600, interval=0.05)
            elapsed = time.perf_counter() - started
            for c in [admin, *clients]:
                c.stop()
            genesis = load_genesis(cfg.genesis_path)
        finally:
            stop_network(root)
    raw = raw_invoke_rate(
        genesis,
        bytes.fromhex(compiled.bytecode[2:]),
        bytes.fromhex(add_params["data"]),
        max(invokes, 200),
    )
    return {"tps": target / elapsed, "elapsed": elapsed, "errors": errors, "raw": raw}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=2000, help="transfers per run")
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--invokes", type=int, default=600, help="SDK invokes (0: skip)")
    parser.add_argument("--only-sdk", action="store_true", help="measure the SDK path alone")
    args = parser.parse_args()
    if args.invokes:
        r = run_sdk(args.invokes)
        ratio = r["tps"] / r["raw"]
        print(
            f"sdk-tbft-4 {r['tps']:8.0f} committed invokes/s through the ChainMaker SDK "
            f"({args.invokes - len(r['errors'])} in {r['elapsed']:.2f} s, {len(r['errors'])} "
            f"refused) | raw py-evm {r['raw']:8.0f} calls/s | ratio {ratio:5.2f} (goal >= 0.40) "
            f"{'OK' if ratio >= 0.40 else 'BELOW GOAL'}",
            flush=True,
        )
    if args.only_sdk:
        return
    per_sender = max(1, args.txs // args.senders)

    results = {}
    for name, consensus, nodes, goal in (("solo", "solo", 1, 0.60), ("tbft-4", "tbft", 4, 0.25)):
        r = run_network(consensus, nodes, args.senders, per_sender, {})
        flat = [tx for n in range(per_sender) for txs in r["per"] for tx in [txs[n]]]
        raw = raw_apply_rate(r["genesis"], flat, BLOCK_SIZE)
        results[name] = (r, raw, goal)
        print(
            f"{name:7s} {r['tps']:8.0f} committed tx/s end to end ({r['txs'] - r['errors']} txs in "
            f"{r['elapsed']:.2f} s, {r['errors']} rejected) | raw py-evm {raw:8.0f} tx/s | "
            f"ratio {r['tps'] / raw:5.2f} (goal >= {goal:.2f}) "
            f"{'OK' if r['tps'] / raw >= goal else 'BELOW GOAL'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
