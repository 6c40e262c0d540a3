"""The EVM application on real py-evm and SQLite: genesis, transfers, cross-node validation,
tampered blocks, mempool admission errors, restart, and a nonce/balance property."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labs.minichain import blocks
from labs.minichain.blocks import InvalidBlock, MiniBlock, ordered_trie_root
from labs.minichain.execution import ExecutionApp, TxError
from labs.minichain.storage import Store

try:
    from ._devchain import CHAIN_ID, COINBASE, FUNDED, KEYS, commit_next, make_genesis, open_app
    from ._devchain import transfer as signed_transfer
except ImportError:  # collected without a package (rootdir-relative imports)
    from _devchain import CHAIN_ID, COINBASE, FUNDED, KEYS, commit_next, make_genesis, open_app
    from _devchain import transfer as signed_transfer

ALICE, BOB = KEYS[0], KEYS[1]
CAROL = to_checksum_address("0x" + "ca" * 20)


def addr(a: str) -> bytes:
    return bytes.fromhex(a[2:])


@pytest.fixture()
def app(tmp_path: Path) -> ExecutionApp:
    return open_app(tmp_path / "a")


def test_the_named_block_classes_are_the_ones_the_vm_uses() -> None:
    """blocks.py names the Cancun classes directly (for their types); they must stay the VM's."""
    assert blocks.BLOCK_CLASS is blocks.VM.get_block_class()
    assert blocks.HEADER_CLASS is dict(blocks.BLOCK_CLASS._meta.fields)["header"]
    assert blocks.TX_BUILDER is blocks.VM.get_transaction_builder()
    assert blocks.RECEIPT_BUILDER is blocks.VM.get_receipt_builder()


def test_genesis_allocates_balances_and_is_deterministic(tmp_path: Path) -> None:
    a = open_app(tmp_path / "a")
    b = open_app(tmp_path / "b")
    assert a.committed_height() == 0
    assert a.reads.get_balance(addr(ALICE.address)) == FUNDED
    assert a.reads.get_balance(addr(CAROL)) == 0
    assert a.head.hash == b.head.hash
    other = open_app(tmp_path / "c", make_genesis(chain_id=7))
    assert other.head.hash != a.head.hash


def test_legacy_and_eip1559_transfers_move_value_and_pay_fees(app: ExecutionApp) -> None:
    raw_legacy = signed_transfer(ALICE, 0, CAROL, 5, legacy=True)
    raw_1559 = signed_transfer(BOB, 0, CAROL, 7)
    h1, h2 = app.check_tx(raw_legacy), app.check_tx(raw_1559)
    assert h1 == keccak(raw_legacy) and h2 == keccak(raw_1559)
    assert app.pending_count() == 2 and app.has_pending()
    block = commit_next(app)
    assert block.height == 1 and len(block.transactions) == 2
    assert not app.has_pending()
    base = block.header.base_fee_per_gas
    legacy_price, tip_1559 = 2 * 10**9, 10**9
    assert app.reads.get_balance(addr(CAROL)) == 12
    assert app.reads.get_balance(addr(ALICE.address)) == FUNDED - 5 - 21000 * legacy_price
    assert app.reads.get_balance(addr(BOB.address)) == FUNDED - 7 - 21000 * (base + tip_1559)
    assert app.reads.get_balance(COINBASE) == 21000 * ((legacy_price - base) + tip_1559)
    assert app.reads.get_nonce(addr(ALICE.address)) == 1
    receipt = app.reads.receipt(h2)
    assert receipt is not None
    assert receipt["status"] == "0x1" and receipt["type"] == "0x2"
    assert receipt["transactionIndex"] == "0x1" and receipt["gasUsed"] == hex(21000)
    assert receipt["cumulativeGasUsed"] == hex(42000)
    assert receipt["effectiveGasPrice"] == hex(base + tip_1559)
    tx = app.reads.transaction(h1)
    assert tx is not None and tx["blockNumber"] == "0x1" and tx["from"] == ALICE.address.lower()


def test_block_built_by_one_node_validates_and_commits_on_another(tmp_path: Path) -> None:
    a, b = open_app(tmp_path / "a"), open_app(tmp_path / "b")
    raws = [signed_transfer(ALICE, n, CAROL, 1 + n) for n in range(3)] + [
        signed_transfer(BOB, 0, CAROL, 100, legacy=True)
    ]
    for raw in raws:
        a.check_tx(raw)
        b.check_tx(raw)  # gossiped: the validator holds the same transactions
    built = a.build_block(1, COINBASE, time.time(), extra=b"node-a")
    assert a.executions == 1
    a.commit_block(built, b"proof")
    assert a.executions == 1  # commit reused the build
    received = MiniBlock.decode(built.encode())
    assert b.why_invalid(received) is None
    assert b.executions == 1
    b.commit_block(received, b"proof")
    assert b.executions == 1  # commit reused the validation
    assert b.head.hash == a.head.hash
    assert b.head.header.state_root == a.head.header.state_root
    assert b.reads.get_balance(addr(CAROL)) == a.reads.get_balance(addr(CAROL)) == 106
    assert b.pending_count() == 0  # included transactions left the validator's mempool too
    assert b.committed_block(1) == (received, b"proof")


def test_validator_drops_pending_transactions_made_stale_by_anothers_block(tmp_path: Path) -> None:
    a, b = open_app(tmp_path / "a"), open_app(tmp_path / "b")
    a.check_tx(signed_transfer(ALICE, 0, CAROL, 1))
    b.check_tx(signed_transfer(ALICE, 0, CAROL, 2))  # same nonce, other transaction
    b.check_tx(signed_transfer(ALICE, 1, CAROL, 3))  # follows it: still valid afterwards
    block = a.build_block(1, COINBASE, time.time())
    b.commit_block(MiniBlock.decode(block.encode()), b"")
    assert b.pending_count() == 1
    assert commit_next(b).transactions[0].nonce == 1


def _tampered(block: MiniBlock, **header_changes: object) -> MiniBlock:
    evm = block.evm
    if header_changes:
        evm = evm.copy(header=evm.header.copy(**header_changes))
    return MiniBlock(evm)


def test_tampered_blocks_are_rejected_with_a_reason(tmp_path: Path) -> None:
    a, b = open_app(tmp_path / "a"), open_app(tmp_path / "b")
    for n in range(2):
        a.check_tx(signed_transfer(ALICE, n, CAROL, 1))
    good = a.build_block(1, COINBASE, time.time())

    wrong_root = _tampered(good, state_root=b"\x01" * 32)
    assert "state_root mismatch" in (b.why_invalid(wrong_root) or "")
    assert not b.validate_block(wrong_root)

    fewer_txs = MiniBlock(good.evm.copy(transactions=good.evm.transactions[:1]))
    assert fewer_txs.hash == good.hash  # same header, other body
    assert "transaction_root mismatch" in (b.why_invalid(fewer_txs) or "")

    orphan = _tampered(good, parent_hash=b"\x02" * 32)
    assert "parent" in (b.why_invalid(orphan) or "")
    too_early = _tampered(good, timestamp=b.head.header.timestamp)
    assert "is not after the parent" in (b.why_invalid(too_early) or "")
    too_late = _tampered(good, timestamp=int(time.time()) + 3600)
    assert "in the future" in (b.why_invalid(too_late) or "")
    with pytest.raises(InvalidBlock, match="state_root mismatch"):
        b.commit_block(wrong_root, b"")

    assert b.validate_block(MiniBlock.decode(good.encode()))  # the honest block still passes
    assert b.why_invalid(fewer_txs) is not None  # and the cache does not vouch for another body
    b.commit_block(MiniBlock.decode(good.encode()), b"")
    assert b.committed_height() == 1


def test_a_block_with_an_invalid_transaction_is_rejected(tmp_path: Path) -> None:
    a, b = open_app(tmp_path / "a"), open_app(tmp_path / "b")
    a.check_tx(signed_transfer(ALICE, 0, CAROL, 1))
    first = a.build_block(1, COINBASE, time.time())
    a.commit_block(first, b"")
    b.commit_block(MiniBlock.decode(first.encode()), b"")
    replay = MiniBlock.decode(first.encode()).evm.transactions[0]  # nonce 0 again
    a.check_tx(signed_transfer(ALICE, 1, CAROL, 1))
    second = a.build_block(2, COINBASE, time.time())
    header = second.header.copy(transaction_root=ordered_trie_root([replay.encode()]))
    forged = MiniBlock(second.evm.copy(header=header, transactions=[replay]))
    reason = b.why_invalid(forged) or ""
    assert "transaction 0" in reason and "nonce" in reason.lower()


def test_variant_builds_a_different_block_at_the_same_height(app: ExecutionApp) -> None:
    app.check_tx(signed_transfer(ALICE, 0, CAROL, 1))
    now = time.time()
    honest = app.build_block(1, COINBASE, now, extra=b"p")
    other = app.build_block(1, COINBASE, now, extra=b"p", variant=1)
    assert honest.hash != other.hash and honest.height == other.height == 1
    assert app.validate_block(honest) and app.validate_block(other)
    with pytest.raises(ValueError, match="can only build block 1"):
        app.build_block(3, COINBASE, now)


def test_block_size_is_bounded_by_max_txs(tmp_path: Path) -> None:
    app = open_app(tmp_path / "a", max_txs_per_block=3)
    for n in range(5):
        app.check_tx(signed_transfer(ALICE, n, CAROL, 1))
    assert len(commit_next(app).transactions) == 3
    assert app.pending_count() == 2
    assert [tx.nonce for tx in commit_next(app).transactions] == [3, 4]


def _resigned_with_high_s(raw: bytes) -> bytes:
    from labs.minichain.blocks import decode_transaction

    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    tx = decode_transaction(raw)
    flipped = tx._inner.copy(s=n - tx.s, y_parity=1 - tx.y_parity)
    return tx.__class__(tx.type_id, flipped).encode()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: b"\x02\xc0junk", "could not decode transaction"),
        (lambda: _resigned_with_high_s(signed_transfer(ALICE, 0)), "invalid signature"),
        (
            lambda: signed_transfer(ALICE, 5),
            "nonce too high: expected 1 (account nonce plus pending), got 5",
        ),
        (
            lambda: signed_transfer(Account.from_key(b"\x77" * 32), 0),
            "insufficient funds for gas * price + value: balance 0, need",
        ),
        (
            lambda: signed_transfer(ALICE, 0, chainId=1),
            f"wrong chain id: expected {CHAIN_ID}, got 1",
        ),
        (lambda: signed_transfer(ALICE, 0, gas=20000), "intrinsic gas too low"),
        (lambda: signed_transfer(ALICE, 0, gas=40_000_000), "exceeds block gas limit"),
        (
            lambda: signed_transfer(ALICE, 0, maxFeePerGas=1, maxPriorityFeePerGas=1),
            "max fee per gas less than block base fee",
        ),
    ],
)
def test_check_tx_refuses_with_a_clear_message(app: ExecutionApp, make, message: str) -> None:
    app.check_tx(signed_transfer(ALICE, 0))  # one pending: the next expected nonce is 1
    with pytest.raises(TxError) as err:
        app.check_tx(make())
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_check_tx_nonce_too_low_and_already_known(app: ExecutionApp) -> None:
    raw = signed_transfer(ALICE, 0)
    app.check_tx(raw)
    with pytest.raises(TxError, match="already known"):
        app.check_tx(raw)
    commit_next(app)
    with pytest.raises(TxError, match="already known"):
        app.check_tx(raw)
    with pytest.raises(
        TxError, match=r"nonce too low: account 0x[0-9a-fA-F]{40} has nonce 1, transaction has 0"
    ):
        app.check_tx(signed_transfer(ALICE, 0, value=99))
    app.check_tx(signed_transfer(ALICE, 1))
    with pytest.raises(TxError, match="already used by a pending transaction"):
        app.check_tx(signed_transfer(ALICE, 1, value=2))


def test_reopening_the_store_resumes_at_the_same_head_and_state(tmp_path: Path) -> None:
    app = open_app(tmp_path / "a")
    for n in range(3):
        app.check_tx(signed_transfer(ALICE, n, CAROL, 10))
        commit_next(app)
    head, root = app.head.hash, app.head.header.state_root
    app.store.close()
    again = open_app(tmp_path / "a")
    assert again.committed_height() == 3
    assert again.head.hash == head and again.head.header.state_root == root
    assert again.reads.get_balance(addr(CAROL)) == 30
    assert again.reads.get_balance(addr(CAROL), 1) == 10  # history stays readable
    assert again.committed_block(2)[1] == b"proof-2"
    again.check_tx(signed_transfer(ALICE, 3, CAROL, 10))
    assert commit_next(again).height == 4


def test_reopening_with_another_genesis_is_refused(tmp_path: Path) -> None:
    from labs.minichain.storage import StoreError

    open_app(tmp_path / "a").store.close()
    with pytest.raises(StoreError, match="holds another chain"):
        open_app(tmp_path / "a", make_genesis(chain_id=99))


def test_raw_apply_rate_is_the_py_evm_anchor() -> None:
    from bench.raw_evm import raw_apply_rate

    raws = [signed_transfer(ALICE, n) for n in range(20)]
    assert raw_apply_rate(make_genesis(), raws, block_size=10) > 0


# --- property: nonces and balances follow a simple model -------------------------------------

action = st.tuples(
    st.integers(0, 2),  # sender
    st.integers(0, 3),  # recipient
    st.integers(0, 10**18),  # value
    st.sampled_from([0, 0, 0, -1, 1]),  # nonce offset from the expected one
    st.booleans(),  # legacy?
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds=st.lists(st.lists(action, max_size=5), min_size=1, max_size=3))
def test_property_nonces_and_balances(rounds: list) -> None:
    app = ExecutionApp(Store(":memory:"), make_genesis())
    keys = KEYS[:3]
    balances = {k.address: FUNDED for k in KEYS}
    nonces = {k.address: 0 for k in KEYS}
    fees_to_coinbase = 0
    for actions in rounds:
        pending: list[tuple[str, str, int, bool]] = []
        for sender_i, to_i, value, offset, legacy in actions:
            sender, to = keys[sender_i], KEYS[to_i]
            expected = nonces[sender.address] + sum(p[0] == sender.address for p in pending)
            if expected + offset < 0:
                continue
            raw = signed_transfer(sender, expected + offset, to.address, value, legacy=legacy)
            if offset == 0:
                app.check_tx(raw)
                pending.append((sender.address, to.address, value, legacy))
            else:
                with pytest.raises(TxError, match="nonce too (low|high)|already (known|used)"):
                    app.check_tx(raw)
        block = commit_next(app)
        base = block.header.base_fee_per_gas
        assert len(block.transactions) == len(pending)
        for sender, to, value, legacy in pending:
            price = 2 * 10**9 if legacy else base + 10**9
            balances[sender] -= value + 21000 * price
            balances[to] += value
            nonces[sender] += 1
            fees_to_coinbase += 21000 * (price - base)
    for k in KEYS:
        assert app.reads.get_balance(addr(k.address)) == balances[k.address]
        assert app.reads.get_nonce(addr(k.address)) == nonces[k.address]
    assert app.reads.get_balance(COINBASE) == fees_to_coinbase


def test_build_skips_what_fails_and_commit_drops_what_can_never_run(tmp_path: Path) -> None:
    poor = Account.from_key(b"\x55" * 32)
    one_tx = 21000 * 3 * 10**9 + 10  # exactly one 10-wei transfer at the max fee
    alloc = {k.address: {"balance": FUNDED} for k in KEYS} | {poor.address: {"balance": one_tx}}
    app = open_app(tmp_path / "a", make_genesis(alloc=alloc))
    app.check_tx(signed_transfer(poor, 0, CAROL, 10))
    app.check_tx(signed_transfer(poor, 1, CAROL, 10))  # affordable alone, not after the first
    app.check_tx(signed_transfer(ALICE, 0, CAROL, 1))
    block = commit_next(app)
    assert [(tx.sender, tx.nonce) for tx in block.transactions] == [
        (addr(poor.address), 0),
        (addr(ALICE.address), 0),
    ]
    assert app.pending_count() == 0  # poor's nonce 1 can never be paid for: dropped
    assert app.reads.get_balance(addr(CAROL)) == 11


def test_signatures_are_recovered_with_coincurve() -> None:
    from eth_keys.backends import get_backend

    assert type(get_backend()).__name__ == "CoinCurveECCBackend"
