"""ChainMaker requests inside minichain blocks, on one in-process application (no network)."""

from __future__ import annotations

import time

import pytest
from chainmaker.user import User

from labs.minichain.blocks import MiniBlock
from labs.minichain.chainmaker import pb
from labs.minichain.chainmaker.executor import RequestRefused
from labs.minichain.execution import ExecutionApp
from labs.minichain.genesis import load_genesis
from labs.minichain.netconfig import init_network
from labs.minichain.storage import Store


@pytest.fixture
def chain(tmp_path):
    init_network(tmp_path / "chain", nodes=2, consensus="tbft", accounts=1)
    genesis = load_genesis(tmp_path / "chain" / "genesis.json")
    folder = tmp_path / "chain" / "crypto-config" / "wx-org1.chainmaker.org" / "user" / "client1"
    user = User(
        org_id="wx-org1.chainmaker.org",
        sign_key_bytes=(folder / "client1.sign.key").read_bytes(),
        sign_cert_bytes=(folder / "client1.sign.crt").read_bytes(),
    )
    return ExecutionApp(Store(":memory:"), genesis), user


def _request(user: User, tx_id: str) -> bytes:
    payload = pb.Payload(
        chain_id="chain1",
        tx_type=pb.TxType.Value("INVOKE_CONTRACT"),
        tx_id=tx_id,
        timestamp=int(time.time()),
        contract_name="nothing_here",
        method="00000000",
    )
    return pb.TxRequest(
        payload=payload, sender=user.sign(payload.SerializeToString())
    ).SerializeToString()


def test_a_block_commits_to_its_requests_and_records_their_results(chain) -> None:
    app, user = chain
    app.check_cm(_request(user, "a1"))
    block = app.build_block(1, b"\x01" * 20, time.time())
    assert block.cm and MiniBlock.decode(block.encode()).cm == block.cm
    app.commit_block(block)
    height, index, raw = app.store.cm_tx("a1")
    result = pb.Result()
    result.ParseFromString(raw)
    assert (height, index) == (1, 0)
    assert result.code == 4 and "does not exist" in result.message  # recorded, though it failed
    # the header commits to the requests: other requests under the same header are refused
    swapped = MiniBlock(block.evm, cm=[_request(user, "b2")])
    assert app.why_invalid(swapped) is not None


def test_a_replayed_request_makes_the_block_invalid(chain) -> None:
    proposer, user = chain
    validator = ExecutionApp(Store(":memory:"), proposer.genesis)
    raw = _request(user, "r1")
    proposer.check_cm(raw)
    first = proposer.build_block(1, b"\x01" * 20, time.time())
    assert validator.why_invalid(first) is None
    proposer.commit_block(first)
    validator.commit_block(first)
    with pytest.raises(RequestRefused, match="duplicate"):
        validator.check_cm(raw)  # the door knows it
    proposer.cm_pool["r1"] = raw  # a proposer that includes it again anyway
    replay = proposer.build_block(2, b"\x01" * 20, time.time())
    assert replay.cm == (raw,)
    assert "replay" in (validator.why_invalid(replay) or "")
