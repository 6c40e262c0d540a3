"""Durable storage of one node: a single SQLite file that survives ``kill -9`` at any instant.

Why one file and one transaction per block: a committed block, the state it produced and the head
pointer must appear together or not at all. SQLite in WAL mode gives exactly that; with
``synchronous=NORMAL`` a killed *process* loses nothing (the WAL lives in the OS page cache), and
only a power cut may lose the last few commits (never corrupting the file).

State trie nodes are content-addressed (key = keccak of the node), so the EVM writes them into an
in-memory buffer (:class:`StateDB`) while it executes candidate blocks; the buffer is flushed inside
the next block-commit transaction. Nodes of a block that never commits are harmless: nothing points
at them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB

SCHEMA_VERSION = 1
DB_FILE = "chain.sqlite"
MEMORY = ":memory:"
"""``Store(":memory:")`` keeps everything in RAM: for simulations and tests that never restart."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    header BLOB NOT NULL,
    body BLOB NOT NULL,
    proof BLOB NOT NULL,
    bloom BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    height INTEGER PRIMARY KEY,
    receipts BLOB NOT NULL,
    senders BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS txs (
    hash BLOB PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consensus (id INTEGER PRIMARY KEY CHECK (id = 0), state BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS cm_txs (
    tx_id TEXT PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL, result BLOB NOT NULL
) WITHOUT ROWID;
"""


class StoreError(RuntimeError):
    """The data folder cannot be used; the message says what to do."""


@dataclass(frozen=True)
class BlockRecord:
    """Everything written when a block commits (besides the buffered state nodes)."""

    height: int
    hash: bytes
    header: bytes
    body: bytes
    proof: bytes
    bloom: bytes
    receipts: bytes
    senders: bytes
    tx_hashes: Sequence[bytes]
    cm_results: Sequence[tuple[str, bytes]] = ()
    """(tx id, serialised Result) of the block's ChainMaker requests, in block order."""


class StateDB(BaseDB):
    """py-evm's key-value view of the state trie: buffered writes, cached reads, SQLite below.

    Deletes are ignored: nodes are shared between blocks and old blocks' state stays readable
    (``eth_getBalance`` at an old height).
    """

    def __init__(self, store: Store, cache_entries: int) -> None:
        self._store = store
        self._pending: dict[bytes, bytes] = {}
        self._cache: dict[bytes, bytes] = {}
        self._cache_entries = cache_entries

    def __getitem__(self, key: bytes) -> bytes:
        value = self._pending.get(key)
        if value is None:
            value = self._cache.get(key)
            if value is None:
                value = self._store._kv_get(key)
                if value is None:
                    raise KeyError(key)
                self._remember({key: value})
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        """Ignored on purpose: see the class docstring."""

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def _remember(self, items: dict[bytes, bytes]) -> None:
        if len(self._cache) + len(items) > self._cache_entries:
            self._cache.clear()  # crude but O(1) amortised; hot nodes come back on first read
        self._cache.update(items)

    def take_pending(self) -> dict[bytes, bytes]:
        """The buffered writes (the caller flushes them inside its commit transaction)."""
        return self._pending

    def flushed(self) -> None:
        """The buffered writes are on disk: keep them as read cache, start a fresh buffer."""
        pending, self._pending = self._pending, {}
        self._remember(pending)

    @property
    def pending_count(self) -> int:
        return len(self._pending)


def _open(path: Path) -> tuple[Path, sqlite3.Connection]:
    if str(path) == MEMORY:
        conn = sqlite3.connect(MEMORY, isolation_level=None, check_same_thread=False)
        conn.executescript(_SCHEMA)
        return path, conn
    if path.is_dir():
        path = path / DB_FILE
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(
            f"data folder {folder} does not exist: create it or point --data elsewhere"
        )
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
    except sqlite3.DatabaseError as exc:
        if "readonly" in str(exc) or "unable to open" in str(exc):
            raise StoreError(
                f"cannot write to {path} ({exc}): make the data folder writable or use another one"
            ) from exc
        raise StoreError(
            f"{path} is not a minichain database ({exc}): move it away or use another data folder"
        ) from exc
    return path, conn


class Store:
    """One node's durable storage: blocks, receipts, state trie, head pointer, consensus WAL.

    ``path`` is the database file, or a folder to hold ``chain.sqlite``, or ``":memory:"``.
    """

    def __init__(self, path: Path | str, cache_entries: int = 100_000) -> None:
        self.path, self._conn = _open(Path(path))
        self._lock = threading.RLock()
        version = self._meta("schema")
        if version is None:
            self._set_meta_now("schema", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has storage schema {version!r}, this node reads {SCHEMA_VERSION}: "
                "use a fresh data folder"
            )
        self.state_db = StateDB(self, cache_entries)
        self.atomic_db = AtomicDB(self.state_db)
        """What py-evm takes as its database (an ``AtomicDatabaseAPI`` over :attr:`state_db`)."""

    # --- internals -----------------------------------------------------------------------------

    def _kv_get(self, key: bytes) -> bytes | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _meta(self, key: str) -> int | float | str | bytes | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta_now(self, key: str, value: object) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _one(self, sql: str, args: tuple) -> tuple | None:
        with self._lock:
            return self._conn.execute(sql, args).fetchone()

    # --- writes --------------------------------------------------------------------------------

    def commit_block(self, record: BlockRecord, genesis_hash: bytes | None = None) -> None:
        """Persist a block, its receipts, all buffered state nodes and the new head, atomically."""
        pending = self.state_db.take_pending()
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR IGNORE INTO kv VALUES (?, ?)", pending.items())
                conn.execute(
                    "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.height,
                        record.hash,
                        record.header,
                        record.body,
                        record.proof,
                        record.bloom,
                    ),
                )
                conn.execute(
                    "INSERT INTO receipts VALUES (?, ?, ?)",
                    (record.height, record.receipts, record.senders),
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO txs VALUES (?, ?, ?)",
                    ((h, record.height, i) for i, h in enumerate(record.tx_hashes)),
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO cm_txs VALUES (?, ?, ?, ?)",
                    (
                        (tx_id, record.height, i, result)
                        for i, (tx_id, result) in enumerate(record.cm_results)
                    ),
                )
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('head', ?)", (record.height,))
                if genesis_hash is not None:
                    conn.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('genesis', ?)", (genesis_hash,)
                    )
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(
                    f"could not commit block {record.height} to {self.path} ({exc}): "
                    "check free disk space and that the data folder is writable"
                ) from exc
        self.state_db.flushed()

    def save_consensus_state(self, state: bytes) -> None:
        """Durably replace the consensus engine's write-ahead state (before it sends a vote)."""
        with self._lock:
            try:
                self._conn.execute("INSERT OR REPLACE INTO consensus VALUES (0, ?)", (state,))
            except sqlite3.Error as exc:
                raise StoreError(
                    f"could not save consensus state to {self.path} ({exc}): "
                    "check free disk space and that the data folder is writable"
                ) from exc

    def load_consensus_state(self) -> bytes | None:
        row = self._one("SELECT state FROM consensus WHERE id = 0", ())
        return None if row is None else bytes(row[0])

    # --- reads ---------------------------------------------------------------------------------

    def head_height(self) -> int | None:
        """Height of the last committed block, None for an empty store."""
        with self._lock:
            value = self._meta("head")
        return None if value is None else int(value)

    def genesis_hash(self) -> bytes | None:
        with self._lock:
            value = self._meta("genesis")
        if value is not None and not isinstance(value, bytes):
            raise StoreError(f"{self.path} holds {value!r} as its genesis hash, not bytes")
        return value

    def block_at(self, height: int) -> tuple[bytes, bytes] | None:
        """(block bytes, proof bytes) of a committed block."""
        row = self._one("SELECT body, proof FROM blocks WHERE height = ?", (height,))
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def header_at(self, height: int) -> bytes | None:
        row = self._one("SELECT header FROM blocks WHERE height = ?", (height,))
        return None if row is None else bytes(row[0])

    def header_by_hash(self, block_hash: bytes) -> bytes | None:
        row = self._one("SELECT header FROM blocks WHERE hash = ?", (block_hash,))
        return None if row is None else bytes(row[0])

    def height_of(self, block_hash: bytes) -> int | None:
        row = self._one("SELECT height FROM blocks WHERE hash = ?", (block_hash,))
        return None if row is None else int(row[0])

    def receipts_at(self, height: int) -> tuple[bytes, bytes] | None:
        """(encoded receipts, concatenated 20-byte senders) of a committed block."""
        row = self._one("SELECT receipts, senders FROM receipts WHERE height = ?", (height,))
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        """(height, index) of a committed transaction."""
        row = self._one("SELECT height, idx FROM txs WHERE hash = ?", (tx_hash,))
        return None if row is None else (int(row[0]), int(row[1]))

    def cm_tx(self, tx_id: str) -> tuple[int, int, bytes] | None:
        """(height, index in the block's ChainMaker section, Result) of a committed request."""
        row = self._one("SELECT height, idx, result FROM cm_txs WHERE tx_id = ?", (tx_id,))
        return None if row is None else (int(row[0]), int(row[1]), bytes(row[2]))

    def cm_results_at(self, height: int) -> list[bytes]:
        """The Results of block ``height``'s ChainMaker requests, in block order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT result FROM cm_txs WHERE height = ? ORDER BY idx", (height,)
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def blooms(self, first: int, last: int) -> Iterator[tuple[int, bytes]]:
        """(height, logs bloom) for committed blocks in [first, last], for cheap log filtering."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT height, bloom FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height",
                (first, last),
            ).fetchall()
        for height, bloom in rows:
            yield int(height), bytes(bloom)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
