"""Certificates per second through the platform's own issuing path, then verified offline.

Issuing = what ``POST /api/credentials/issue`` runs: ``academy.services.credentials.issue_batch``
on PostgreSQL, for the learners of a cohort, in batches: each credential drafted from the course's
completion rule, signed twice (eddsa-jcs-2022 and eddsa-rdfc-2022) with the institution's key
from the database (each credential canonicalized by the service's hashing worker processes,
``ACADEMY_CREDENTIALS_WORKERS``, started and warm as in a running service; signed in the service's
own process), hashed into the batch tree, the root recorded on a real academy ledger (a
4-validator TBFT minichain with the registry contract; one transaction per batch), and every
credential stored with its inclusion proof. Verifying = every check of ``academy verify
--offline`` (schema, dates, both signatures, issuer key and Merkle inclusion against the ledger
evidence, the signed status lists) from a cache filled with ``academy credentials cache``'s own
code, on every core (worker processes).

The anchor, measured in the same run: bare Ed25519 signatures and verifications per second over
64-byte messages on one core through the same libsodium calls (the floor cost of any signed
credential), so the printed ratios stay comparable on a shared, busy machine. The CPU time spent
per credential is printed too (issuing: the service's process and its hashing workers), with
what it comes to on otherwise idle cores: on a machine that others load, the wall rates say more
about them than about us.

Goals: >= 5,000 issued per second and >= 3,000 verified per second on 2 cores, both proofs.
Not met. Last measured (2,000 credentials, batches of 1,000, 2 workers, load 8-16 on 2 cores):
141 issued and anchored/s, 99 verified/s (bare Ed25519 in the same run: 7,495 signs/s, 3,501
verifications/s; ratios 0.0187 and 0.0284); 2.49 ms CPU to issue a credential (0.36 ms of it in
the service's process) and 3.28 ms to verify one, about 700 issued/s and 600 verified/s on 2 idle
cores. The code before, run just before it (load 11-12): 70 issued/s, 67 verified/s, 3.5 ms and
4.7 ms. What is left is pyld's JSON-LD expansion (about 60% of it) and its RDF conversion and
RDFC-1.0 (platform/academy/credentials/rdfc.py).

    .venv/bin/python bench/credentials.py [--count 2000] [--batch 1000] [--workers 2]

PostgreSQL: ``ACADEMY_TEST_PG`` (default postgresql://postgres@127.0.0.1:5432/postgres); a
database is created for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import psutil
import psycopg
from academy.credentials import workers
from academy.credentials.did import did_web_url
from academy.credentials.fetch import FetchLimits
from academy.credentials.keys import IssuerKey, verify_signature
from academy.credentials.verify import CacheSources, fill_cache, verify_credential
from academy.db import make_engine, session_scope, upgrade
from academy.models import CredentialRecord, IssuerProfile, StatusListRecord, User
from academy.services import credentials as service
from academy.services.identity import ensure_user
from academy.settings import Settings
from sqlmodel import Session, col, select

from labs.minichain.netconfig import init_network
from labs.minichain.network import start_network, stop_network

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.platform.academy.builders import uni_cohort, write_course  # noqa: E402
from tests.platform.credentials.harness import StatusServer  # noqa: E402

PG_ADMIN = os.environ.get("ACADEMY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SCORES = {"sha": (9.0, 10.0), "second": (8.5, 10.0)}
"""Lab scores of every learner (the course of ``write_course`` has these two labs)."""


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


def hashing_cpu_seconds() -> float:
    """CPU time so far of the worker processes ``issue_batch`` canonicalizes in."""
    total = 0.0
    for pid in workers.worker_pids():
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


# -- worker side ----------------------------------------------------------------------------------

_state: dict[str, Any] = {}


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


def issue_through_the_service(
    settings: Settings, count: int, batch: int
) -> tuple[list[bytes], float, tuple[float, float], int]:
    """Issue ``count`` credentials with ``issue_batch`` in batches of ``batch``: (documents as
    stored, wall seconds, CPU seconds of issue_batch's own process and of its hashing workers,
    batches anchored). Learners are set up before timing."""
    engine = make_engine(settings)
    with session_scope(engine) as session:
        institution, cohort = uni_cohort(session, settings.courses_dir)
        for n in range(count):
            ensure_user(session, f"learner{n:06d}")
    with Session(engine, expire_on_commit=False) as session:
        users = session.exec(select(User).where(col(User.username).startswith("learner"))).all()
        institution = session.merge(institution)
        cohort = session.merge(cohort)
        learners = [(cohort, u, dict(SCORES)) for u in users]
        service.ensure_issuer(session, settings, institution)  # its first key and status lists
        session.commit()
        # the hashing workers of a running service are up and warm: start them before timing
        workers.start(service.hashing_workers(settings))
        anchored = 0
        start, cpu, hashing = time.perf_counter(), cpu_seconds(), hashing_cpu_seconds()
        for part in chunks(learners, batch):
            made = service.issue_batch(session, settings, institution, part, None)
            anchored += int(made.anchored)
        wall = time.perf_counter() - start
        spent, hashed = cpu_seconds() - cpu, hashing_cpu_seconds() - hashing
        docs = [r.encode() for r in session.exec(select(CredentialRecord.document)).all()]
    engine.dispose()
    return docs, wall, (spent, hashed), anchored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=1_000, help="credentials per anchor")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    sign_rate, verify_rate = ed25519_rates()
    root = Path(tempfile.mkdtemp(prefix="bench_credentials_"))
    init_network(root / "ledger", nodes=4, consensus="tbft",
                 params={"timeout_propose": 1.5, "empty_block_interval": 5.0})  # fmt: skip
    cfg = start_network(root / "ledger")
    server = StatusServer()
    dbname = f"bench_credentials_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    host = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        rpc = cfg.rpc_url(0)
        settings = Settings(
            database_url=f"{host}/{dbname}",
            state_dir=root / "state",
            courses_dir=root / "courses",
            ledger_rpc_url=rpc,
            ledger_private_key=cfg.accounts()[0]["private_key"],
            public_url=server.base_url,  # status lists are published where credentials say
            credentials_auto_seconds=0,
            credentials_workers=args.workers,  # issue_batch canonicalizes on every core
        )
        write_course(settings.courses_dir)
        upgrade(settings)
        print(f"issuing {args.count:,} credentials through issue_batch on PostgreSQL, in batches "
              f"of {args.batch:,}...", flush=True)  # fmt: skip
        final, issue_seconds, issue_cpu, anchors = issue_through_the_service(
            settings, args.count, args.batch
        )
        engine = make_engine(settings)
        with Session(engine) as session:
            first = orjson.loads(final[0])
            record = session.exec(
                select(CredentialRecord).where(CredentialRecord.uid == first["id"])
            ).one()
            service.set_status(session, settings, record, "revocation", True)
            for row in session.exec(select(StatusListRecord)).all():
                doc = service.status_list_document(session, settings, row)
                server.publish(doc["id"], doc)
            # the institution's did:web resolves to the server too, as academy serves it
            issuer = session.get(IssuerProfile, record.issuer_id)
            assert issuer is not None
            server.publish(
                did_web_url(issuer.issuer_url, http_loopback=True),
                service.issuer_document(session, settings, issuer),
            )
        engine.dispose()
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
            for counts in pool.map(_verify_chunk, chunks(final, 100)):
                for k, v in counts.items():
                    totals[k] = totals.get(k, 0) + v
            verify_seconds = time.perf_counter() - start
            verify_cpu = totals.pop("cpu") + cpu_seconds() - main_cpu
    finally:
        server.close()
        stop_network(root / "ledger")
        shutil.rmtree(root, ignore_errors=True)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    issued = len(final) / issue_seconds
    verified = len(final) / verify_seconds
    print(f"anchor: bare Ed25519 on one core: {sign_rate:,.0f} signatures/s, "
          f"{verify_rate:,.0f} verifications/s")  # fmt: skip
    print(f"issued and anchored: {issued:,.0f} credentials/s through issue_batch ({anchors} "
          f"ledger anchors; {issued / sign_rate:.4f} x bare signing)  goal >= 5,000/s")  # fmt: skip
    print(f"verified offline:    {verified:,.0f} credentials/s "
          f"({verified / verify_rate:.4f} x bare verification)  goal >= 3,000/s")  # fmt: skip
    print(f"verdicts: {totals} (one revoked on purpose)")
    own, hashing = (x / len(final) for x in issue_cpu)
    idle_issue = 1 / (own + hashing / args.workers)  # the service waits for its workers
    print(f"CPU per credential: issuing {(own + hashing) * 1e3:.2f} ms ({own * 1e3:.2f} in "
          f"issue_batch's process, {hashing * 1e3:.2f} in its {args.workers} hashing workers), "
          f"verifying {verify_cpu / len(final) * 1e3:.2f} ms; on otherwise idle cores that is "
          f"{idle_issue:,.0f} issued/s and {args.workers * len(final) / verify_cpu:,.0f} "
          f"verified/s with {args.workers} workers")  # fmt: skip
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
