"""Canonicalizing a batch of credentials on every core before it is signed.

Almost all the work of signing a credential is canonicalizing it (JSON-LD expansion and RDFC-1.0
in pure Python, :mod:`.rdfc`); the Ed25519 signature itself is a few microseconds. So worker
processes compute the hashData of each credential (:func:`~.proofs.signing_hashes`), and the
calling process signs them: the issuer's private key never leaves the process that decrypted it.

Workers are started with ``spawn`` (a fresh interpreter, never a fork of a server holding
threads, sockets and decrypted keys) on first use and kept for later batches. Small batches stay
in the calling process, where starting or feeding workers would cost more than it saves. If the
pool breaks (a worker killed), the batch is done in the calling process and the next batch starts
a new pool.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .credential import build_credential
from .proofs import signing_hashes

log = logging.getLogger("academy.credentials")

MIN_PARALLEL = 64
"""Batches smaller than this are hashed in the calling process."""

_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()


def _hash_chunk(
    documents: list[dict[str, Any]], created: str, verification_method: str
) -> list[list[bytes]]:
    return [signing_hashes(doc, created, verification_method) for doc in documents]


def _get_pool(workers: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != workers:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            _pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            _pool_size = workers
        return _pool


def _drop_pool(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


def batch_signing_hashes(
    documents: Sequence[dict[str, Any]], created: str, verification_method: str, workers: int
) -> list[list[bytes]]:
    """:func:`~.proofs.signing_hashes` of each document (every required suite), computed by
    ``workers`` processes (1: in this process)."""
    docs = list(documents)
    if workers <= 1 or len(docs) < MIN_PARALLEL:
        return _hash_chunk(docs, created, verification_method)
    pool = _get_pool(workers)
    size = -(-len(docs) // (workers * 4))  # a few chunks per worker evens out their speeds
    chunks = [docs[i : i + size] for i in range(0, len(docs), size)]
    try:
        done = pool.map(_hash_chunk, chunks, [created] * len(chunks),
                        [verification_method] * len(chunks))  # fmt: skip
        return [hashes for chunk in done for hashes in chunk]
    except BrokenProcessPool:
        log.warning("credential hashing workers died; hashing this batch in-process")
        _drop_pool(pool)
        return _hash_chunk(docs, created, verification_method)


def _warm(created: str) -> int:
    """Import and canonicalize once in a worker: what its first real chunk would pay."""
    doc = build_credential(
        issuer={"id": "did:web:academy.example", "name": "warm-up"},
        subject_id="urn:uuid:00000000-0000-4000-8000-000000000000",
        identity="warm-up",
        achievement={
            "id": "https://academy.example/a",
            "name": "A",
            "description": "A",
            "criteria": "A",
            "level": "A",
            "course": "a",
        },  # fmt: skip
        evidence=[{"name": "lab", "score": 1, "max": 1}],
        valid_from=created,
    )
    signing_hashes(doc, created, "did:web:academy.example#warm-up")
    return os.getpid()


def start(workers: int) -> None:
    """Start ``workers`` processes now and warm them (a benchmark before its clock starts; a
    service starts them at its first large batch instead)."""
    if workers > 1:
        pool = _get_pool(workers)
        list(pool.map(_warm, ["2026-01-01T00:00:00Z"] * workers))


def worker_pids() -> list[int]:
    """The process ids of the running workers (the benchmark counts their CPU time)."""
    with _lock:
        return list(_pool._processes or {}) if _pool is not None else []


def shutdown() -> None:
    """Stop the workers (they also stop when the process exits)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)
