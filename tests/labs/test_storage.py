"""The SQLite store: no committed block is lost when the process is killed with SIGKILL at any
instant, state nodes are written only with their block, and unusable folders fail in one line."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from eth_utils import to_checksum_address

from labs.minichain.storage import Store, StoreError

try:
    from ._devchain import COINBASE, KEYS, commit_next, open_app, transfer
except ImportError:  # collected without a package (rootdir-relative imports)
    from _devchain import COINBASE, KEYS, commit_next, open_app, transfer

ALICE = KEYS[0]
CAROL = to_checksum_address("0x" + "ca" * 20)


def _committer(folder: str, conn) -> None:
    """Child: commit one-transfer blocks forever, reporting each only after commit returned."""
    app = open_app(Path(folder))
    nonce = app.reads.get_nonce(bytes.fromhex(ALICE.address[2:]))
    while True:
        app.check_tx(transfer(ALICE, nonce, CAROL, 1))
        block = app.build_block(app.committed_height() + 1, COINBASE, time.time())
        app.commit_block(block, b"proof-%d" % block.height)
        conn.send((block.height, block.hash))
        nonce += 1


def test_sigkill_at_random_moments_loses_no_committed_block(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(20240607)
    reported: dict[int, bytes] = {}
    for _round in range(8):
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_committer, args=(str(folder), sender), daemon=True)
        child.start()
        sender.close()
        assert receiver.poll(30), "the committing child never reported a block"
        deadline = time.monotonic() + rng.uniform(0.05, 0.6)
        while time.monotonic() < deadline:
            if receiver.poll(0.005):
                height, block_hash = receiver.recv()
                reported[height] = block_hash
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        assert child.exitcode == -signal.SIGKILL
        while receiver.poll():  # reports sent before the kill still count
            try:
                height, block_hash = receiver.recv()
            except EOFError:
                break
            reported[height] = block_hash
        receiver.close()

        app = open_app(folder)
        head = app.committed_height()
        assert head >= max(reported), "a block reported as committed was lost"
        for height, block_hash in reported.items():
            found = app.committed_block(height)
            assert found is not None and found[0].hash == block_hash
            assert found[1] == b"proof-%d" % height
        # The head's state is complete and agrees with the chain: one 1-wei transfer per block.
        assert app.reads.get_balance(bytes.fromhex(CAROL[2:])) == head
        assert app.reads.get_nonce(bytes.fromhex(ALICE.address[2:])) == head
        assert app.reads.get_balance(bytes.fromhex(CAROL[2:]), head // 2) == head // 2
        assert all(app.committed_block(h) is not None for h in range(head + 1))
        assert app.committed_block(head + 1) is None
        app.store.close()
    assert max(reported) >= 5


def test_state_nodes_are_buffered_until_their_block_commits(tmp_path: Path) -> None:
    app = open_app(tmp_path / "n")
    db_file = tmp_path / "n" / "chain.db"

    def rows_on_disk() -> int:
        with sqlite3.connect(db_file) as other:
            return other.execute("SELECT COUNT(*) FROM kv").fetchone()[0]

    before = rows_on_disk()
    app.check_tx(transfer(ALICE, 0, CAROL, 1))
    block = app.build_block(1, COINBASE, time.time())
    assert app.store.state_db.pending_count > 0
    assert rows_on_disk() == before  # executing a candidate wrote nothing to disk
    app.commit_block(block, b"")
    assert app.store.state_db.pending_count == 0
    assert rows_on_disk() > before
    assert app.store.head_height() == 1
    assert app.store.tx_location(block.transactions[0].hash) == (1, 0)


def test_consensus_state_is_replaced_and_survives_reopen(tmp_path: Path) -> None:
    with Store(tmp_path / "chain.db") as store:
        assert store.load_consensus_state() is None
        store.save_consensus_state(b"round 1")
        store.save_consensus_state(b"round 2")
    with Store(tmp_path / "chain.db") as store:
        assert store.load_consensus_state() == b"round 2"


def test_a_folder_path_holds_the_default_file(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        assert store.path == tmp_path / "chain.sqlite"


def test_a_missing_data_folder_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist: create it") as err:
        Store(tmp_path / "nowhere" / "chain.db")
    assert "\n" not in str(err.value)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(StoreError, match="does not exist"):
        Store(a_file / "chain.db")


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "chain.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="is not a minichain database"):
        Store(junk)


def test_memory_store_runs_a_chain(tmp_path: Path) -> None:
    from labs.minichain.execution import ExecutionApp

    try:
        from ._devchain import make_genesis
    except ImportError:
        from _devchain import make_genesis
    app = ExecutionApp(Store(":memory:"), make_genesis())
    app.check_tx(transfer(ALICE, 0, CAROL, 3))
    assert commit_next(app).height == 1
    assert app.reads.get_balance(bytes.fromhex(CAROL[2:])) == 3
