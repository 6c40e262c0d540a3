"""End-to-end committed transactions per second, beside raw py-evm measured in the same run.

Signed EIP-1559 transfers are made up front, then sent over JSON-RPC (batched requests, each sender's
transactions to one node, in nonce order) to a real network of validator processes on loopback; a
transaction counts once its sender's committed nonce shows it included. The anchor is plain py-evm
applying the very same transactions in blocks of the same size, in this process, in this run.

Goals (issue 2): solo >= 60 % of raw; tbft with 4 validators >= 25 % of raw (they share two cores).

    .venv/bin/python bench/chain_tps.py [--txs 2000] [--senders 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
from eth_account import Account

from labs.minichain.execution import raw_apply_rate
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=2000, help="transfers per run")
    parser.add_argument("--senders", type=int, default=20)
    args = parser.parse_args()
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
