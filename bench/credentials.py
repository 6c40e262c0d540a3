"""Certificates per second: issue and anchor 100,000 credentials, then verify them offline.

Issuing = draft the Open Badges credential, sign it (eddsa-jcs-2022), hash it into the batch tree,
record each batch root on a real academy ledger (a 4-validator TBFT minichain with the registry
contract; one transaction per batch) and give every credential its inclusion proof. Verifying =
every check of ``academy verify --offline``: schema, dates, signature, issuer key and Merkle
inclusion against the ledger evidence in a cache filled with ``academy credentials cache``'s own
code, and the signed status lists from that cache. Both stages use every core (worker processes);
the workers sign the next batch while a batch root waits for the ledger.

The anchor, measured in the same run: bare Ed25519 signatures and verifications per second over
64-byte messages on one core through the same libsodium calls (the floor cost of any signed
credential), so the printed ratios stay comparable on a shared, busy machine. The CPU time spent
per credential (workers and this process) is printed too, with what it comes to on otherwise idle
cores: on a machine that others load, the wall rates above it say more about them than about us.

Goals (issue 5): >= 5,000 issued per second and >= 3,000 verified per second on 2 cores.

    .venv/bin/python bench/credentials.py [--count 100000] [--batch 10000] [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
from academy.credentials.anchoring import Anchor, anchor_proof, leaf_of
from academy.credentials.credential import build_credential
from academy.credentials.did import did_web_for, did_web_url, method_id
from academy.credentials.fetch import FetchLimits
from academy.credentials.issuer import Issuer, now_utc
from academy.credentials.keys import IssuerKey, format_time, verify_signature
from academy.credentials.ledger import Registry
from academy.credentials.merkle import MerkleTree
from academy.credentials.proofs import proofs_of, sign, with_proofs
from academy.credentials.statuslist import status_entry
from academy.credentials.verify import CacheSources, fill_cache, verify_credential

from labs.minichain.netconfig import init_network
from labs.minichain.network import start_network, stop_network

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.platform.credentials.harness import StatusServer  # noqa: E402

ISSUER_PATH = "/issuers/bench"  # the issuer is the did:web of this folder on the bench's server
ACHIEVEMENT = {
    "id": "https://academy.example/courses/crypto-foundations",
    "name": "Cryptographic foundations",
    "description": "Hashes, signatures, Merkle trees and consensus, hands-on on a real chain.",
    "criteria": "Scored at least 60% of the points of every lab: SHA-256, signatures, Merkle.",
    "level": "blockchain engineering technician: primary",
    "course": "crypto-foundations",
}
EVIDENCE = [
    {"name": "SHA-256 and hash properties", "score": 9, "max": 10},
    {"name": "Digital signatures", "score": 8.5, "max": 10},
    {"name": "Merkle trees", "score": 10, "max": 10},
]


def ed25519_rates(seconds: float = 1.0) -> tuple[float, float]:
    """Bare Ed25519 over 64-byte messages on one core, through the same calls the credentials
    use (libsodium): signatures per second and verifications per second."""
    key = IssuerKey.generate()
    msg = os.urandom(64)
    sig = key.sign(msg)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        key.sign(msg)
        n += 1
    signs = n / (time.perf_counter() - start)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        verify_signature(key.multikey, sig, msg)
        n += 1
    return signs, n / (time.perf_counter() - start)


def cpu_seconds() -> float:
    """CPU time of this process so far (all its threads)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def library_form(head: bytes, tree: MerkleTree, anchor: dict[str, Any], created: str) -> bytes:
    """The first credential of a batch written from dicts, as ``anchoring.anchor_batch`` makes
    it, to hold :func:`attach`'s joined bytes to it."""
    signed = orjson.loads(head + b"]}")
    proof = anchor_proof(tree.root.hex(), tree.path(0), anchor, created)
    return orjson.dumps(with_proofs(signed, [*proofs_of(signed), proof]))


# -- worker side ----------------------------------------------------------------------------------

_state: dict[str, Any] = {}


def _init(secret: str, lists: dict[str, str], created: str, issuer: str) -> None:
    _state.update(
        key=IssuerKey.from_secret_multibase(secret), lists=lists, created=created, issuer=issuer
    )


def _issue_chunk(chunk: list[tuple[int, int, int]]) -> tuple[list[bytes], list[bytes], float]:
    """Draft and sign credentials ``(serial, revocation index, suspension index)``: each one's
    JSON up to its proof set (its closing brace left off) with its signature proof, its leaf, and
    the CPU seconds the chunk took."""
    cpu = cpu_seconds()
    key, lists, created, issuer = (
        _state["key"],
        _state["lists"],
        _state["created"],
        _state["issuer"],
    )
    method = method_id(issuer, key.multikey)
    heads, leaves = [], []
    for serial, rev, sus in chunk:
        draft = build_credential(
            issuer={"id": issuer, "name": "Bench Institute"},
            subject_id=f"urn:uuid:00000000-0000-4000-8000-{serial:012d}",
            identity=f"learner{serial}@bench.example",
            achievement=ACHIEVEMENT,
            evidence=EVIDENCE,
            valid_from="2026-01-01T00:00:00Z",
            status=[
                status_entry(lists["revocation"], rev, "revocation"),
                status_entry(lists["suspension"], sus, "suspension"),
            ],
        )
        signed = sign(draft, key, created, method)
        leaves.append(leaf_of(signed))
        heads.append(orjson.dumps(draft)[:-1] + b',"proof":[' + orjson.dumps(signed["proof"]))
    return heads, leaves, cpu_seconds() - cpu


def attach(
    heads: list[bytes], tree: MerkleTree, anchor: dict[str, Any], created: str
) -> list[bytes]:
    """The issued credentials: each one's proof set gets its LedgerAnchorProof (inclusion path
    in the batch tree). The bytes are what ``orjson.dumps(anchoring.anchor_batch(...))`` writes
    for the same credential; joined here from the signed JSON so the main process keeps up."""
    proof = anchor_proof(tree.root.hex(), [], anchor, created)
    before, after = orjson.dumps(proof).split(b'"path":[]')
    return [
        head + b"," + before + b'"path":' + orjson.dumps(tree.path(i)) + after + b"]}"
        for i, head in enumerate(heads)
    ]


def _verify_init(cache: str) -> None:
    _state["sources"] = CacheSources(Path(cache))


def _verify_chunk(docs: list[bytes]) -> dict[str, float]:
    """Verdict counts of ``docs``, and the CPU seconds spent (``"cpu"``)."""
    cpu = cpu_seconds()
    counts: dict[str, float] = {}
    sources = _state["sources"]
    for raw in docs:
        verdict = verify_credential(orjson.loads(raw), sources).verdict
        counts[verdict] = counts.get(verdict, 0) + 1
    counts["cpu"] = cpu_seconds() - cpu
    return counts


# -- main -----------------------------------------------------------------------------------------


def chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000, help="credentials per anchor")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    sign_rate, verify_rate = ed25519_rates()
    root = Path(tempfile.mkdtemp(prefix="bench_credentials_"))
    init_network(root / "ledger", nodes=4, consensus="tbft",
                 params={"timeout_propose": 1.5, "empty_block_interval": 5.0})  # fmt: skip
    cfg = start_network(root / "ledger")
    server = None
    try:
        rpc = cfg.rpc_url(0)
        registry = Registry.deploy(rpc, cfg.accounts()[0]["private_key"])
        ident = registry.identity()
        server = StatusServer()
        base = f"{server.base_url}/status"
        issuer = Issuer(
            did_web_for(server.base_url + ISSUER_PATH), "Bench Institute", base, registry
        )
        key = issuer.add_key(now_utc() - dt.timedelta(minutes=1))
        lists = {p: s.url for p, s in issuer.lists.items()}
        created = format_time(now_utc())
        rng = random.Random(5)
        rev = rng.sample(range(131_072), args.count)
        sus = rng.sample(range(131_072), args.count)
        work = [(i, rev[i], sus[i]) for i in range(args.count)]

        print(f"issuing {args.count:,} credentials in batches of {args.batch:,} "
              f"with {args.workers} worker(s)...", flush=True)  # fmt: skip
        final: list[bytes] = []
        batches = chunks(work, args.batch)
        anchor_seconds = 0.0
        with ProcessPoolExecutor(
            args.workers,
            initializer=_init,
            initargs=(key.secret_multibase(), lists, created, issuer.id),
        ) as pool:
            start, main_cpu, issue_cpu = time.perf_counter(), cpu_seconds(), 0.0

            def submit(batch: list) -> list:
                return [pool.submit(_issue_chunk, c) for c in chunks(batch, 500)]

            pending = submit(batches[0])
            for n in range(len(batches)):
                heads, leaves = [], []
                for job in pending:
                    h, lv, spent = job.result()
                    issue_cpu += spent
                    heads += h
                    leaves += lv
                # the workers sign the next batch while this one's root goes to the ledger
                pending = submit(batches[n + 1]) if n + 1 < len(batches) else []
                tree = MerkleTree(leaves)
                sent = time.perf_counter()
                tx = registry.anchor(issuer.id, tree.root, len(tree))
                anchor_seconds += time.perf_counter() - sent
                anchor = Anchor(ident["chainId"], ident["genesisHash"], ident["registry"],
                                tx.tx_hash, tx.block_number, tx.block_hash).to_json()  # fmt: skip
                joined = attach(heads, tree, anchor, created)
                assert joined[0] == library_form(heads[0], tree, anchor, created)
                final += joined
            issue_seconds = time.perf_counter() - start
            issue_cpu += cpu_seconds() - main_cpu

        first = orjson.loads(final[0])
        issuer.by_credential[first["id"]] = {"revocation": rev[0], "suspension": sus[0]}
        issuer.set_status(first["id"], "revocation")
        for purpose, state in issuer.lists.items():
            server.publish(state.url, issuer.status_list(purpose))
        server.publish(did_web_url(issuer.id, http_loopback=True), issuer.did_document())
        cache = root / "cache"
        # the status lists and the DID document are served on loopback http here: fetching
        # there must be asked for
        fill_cache(cache, [first], rpc, limits=FetchLimits(allow_private=True), did_web_http=True)

        print(f"verifying {len(final):,} offline...", flush=True)
        totals: dict[str, float] = {}
        with ProcessPoolExecutor(
            args.workers, initializer=_verify_init, initargs=(str(cache),)
        ) as pool:
            start, main_cpu = time.perf_counter(), cpu_seconds()
            for counts in pool.map(_verify_chunk, chunks(final, 500)):
                for k, v in counts.items():
                    totals[k] = totals.get(k, 0) + v
            verify_seconds = time.perf_counter() - start
            verify_cpu = totals.pop("cpu") + cpu_seconds() - main_cpu
    finally:
        if server is not None:
            server.close()
        stop_network(root / "ledger")
        shutil.rmtree(root, ignore_errors=True)

    issued = args.count / issue_seconds
    verified = len(final) / verify_seconds
    print(f"anchor: bare Ed25519 on one core: {sign_rate:,.0f} signatures/s, "
          f"{verify_rate:,.0f} verifications/s")  # fmt: skip
    print(f"issued and anchored: {issued:,.0f} credentials/s "
          f"({args.count // args.batch + (args.count % args.batch > 0)} ledger anchors; "
          f"{issued / sign_rate:.2f} x bare signing; {anchor_seconds:.1f} s waiting for the "
          f"ledger, overlapped with signing)  goal >= 5,000/s")  # fmt: skip
    print(f"verified offline:    {verified:,.0f} credentials/s "
          f"({verified / verify_rate:.2f} x bare verification)  goal >= 3,000/s")  # fmt: skip
    print(f"verdicts: {totals} (one revoked on purpose)")
    print(f"CPU per credential (workers and this process): issuing {issue_cpu / args.count * 1e6:.0f} "
          f"us, verifying {verify_cpu / len(final) * 1e6:.0f} us; with {args.workers} otherwise "
          f"idle cores that is {args.workers * args.count / issue_cpu:,.0f} issued/s and "
          f"{args.workers * len(final) / verify_cpu:,.0f} verified/s")  # fmt: skip
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
