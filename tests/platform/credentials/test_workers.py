"""A batch canonicalized by worker processes signs exactly what one process signs, and the key
stays in the calling process."""

from __future__ import annotations

import os

import pytest
from academy.credentials import proofs, workers
from academy.credentials.anchoring import sign_all
from academy.credentials.issuer import Issuer
from academy.credentials.keys import IssuerKey

CREATED = "2026-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def drafts() -> tuple[Issuer, IssuerKey, list[dict]]:
    issuer = Issuer("did:web:academy.example:issuers:uni", "Uni", "https://academy.example/s")
    key = issuer.add_key()
    achievement = {"id": "https://academy.example/courses/c", "name": "C", "description": "D",
                   "criteria": "E", "level": "F", "course": "c"}  # fmt: skip
    docs = [
        issuer.draft(
            f"urn:uuid:00000000-0000-4000-9000-{n:012d}",
            f"learner{n}",
            achievement,
            [{"name": "lab", "score": n % 11, "max": 10}],
            CREATED,
        )  # fmt: skip
        for n in range(workers.MIN_PARALLEL + 7)
    ]
    return issuer, key, docs


def test_workers_hash_what_one_process_hashes(drafts) -> None:
    issuer, key, docs = drafts
    method = issuer.method(key)
    alone = workers.batch_signing_hashes(docs, CREATED, method, workers=1)
    spread = workers.batch_signing_hashes(docs, CREATED, method, workers=2)
    assert workers._pool is not None  # the batch really went to worker processes
    assert spread == alone and len(alone) == len(docs)
    assert all(len(h) == len(proofs.REQUIRED_SUITES) and len(set(h)) == 2 for h in alone)
    assert len({h[1] for h in alone}) == len(docs)  # each credential its own RDFC hash


def test_a_batch_signed_through_workers_verifies_and_matches(drafts) -> None:
    issuer, key, docs = drafts
    method = issuer.method(key)
    signed = sign_all(docs, key, CREATED, method, workers=2)
    assert signed == sign_all(docs, key, CREATED, method, workers=1)  # Ed25519 is deterministic
    for doc in signed[:3] + signed[-3:]:
        check = proofs.verify_proof_set(doc, key.multikey)
        assert check.ok, check.detail
    tampered = {**signed[0], "name": "Another course"}
    assert not proofs.verify_proof_set(tampered, key.multikey).ok


def test_small_batches_stay_in_process(drafts) -> None:
    issuer, key, docs = drafts
    workers.shutdown()
    few = docs[: workers.MIN_PARALLEL - 1]
    assert len(workers.batch_signing_hashes(few, CREATED, issuer.method(key), workers=2)) == len(
        few
    )
    assert workers._pool is None


def test_a_broken_pool_falls_back_and_is_replaced(drafts) -> None:
    issuer, key, docs = drafts
    method = issuer.method(key)
    expected = workers.batch_signing_hashes(docs, CREATED, method, workers=1)
    workers.batch_signing_hashes(docs, CREATED, method, workers=2)
    pool = workers._pool
    assert pool is not None
    for process in list(pool._processes.values()):
        process.kill()
        process.join()
    assert workers.batch_signing_hashes(docs, CREATED, method, workers=2) == expected
    assert workers._pool is not pool
    assert workers.batch_signing_hashes(docs, CREATED, method, workers=2) == expected
    workers.shutdown()


def test_start_brings_up_every_worker_before_the_first_batch() -> None:
    workers.shutdown()
    assert workers.worker_pids() == []
    workers.start(2)
    pids = workers.worker_pids()
    assert len(set(pids)) == 2 and all(pid != os.getpid() for pid in pids)
    workers.shutdown()
    assert workers.worker_pids() == []
