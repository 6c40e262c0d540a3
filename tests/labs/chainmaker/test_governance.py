"""Governing a running chain through the official SDK, unmodified: chain configuration updates
under resource policies, certificates on chain, a fifth org's validator joining, and the pool
and consensus state each node reports. Its own 4-org, 4-validator TBFT chain, since every test
here changes the chain's configuration."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from chainmaker import ChainClient
from chainmaker.exceptions import (
    AuthenticationError,
    EndorsementNotEnoughError,
    InvalidParameter,
    RequestError,
)
from chainmaker.keys import TxStage, TxType
from chainmaker.protos.common.request_pb2 import Payload
from chainmaker.protos.txpool.transaction_pool_pb2 import TxStatus
from chainmaker.utils.evm_utils import calc_evm_method_params

from labs.minichain.chainmaker.cryptogen import write_org
from labs.minichain.joining import prepare_joining_node
from labs.minichain.jsonrpc import call as rpc
from labs.minichain.network import start_network
from labs.minichain.waiting import wait_until

from .sdkchain import LONG, ORG, academy, admins, member_client
from .sdkchain import all_nodes_past as _all_nodes_past
from .sdkchain import ask as _ask
from .sdkchain import heights as _heights


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    data = tmp_path_factory.mktemp("gov") / "chain"
    up = academy("chain", "up", "--data", str(data), "--orgs", "4", "--detach")
    try:
        assert up.returncode == 0, up.stderr
        yield json.loads(up.stdout)
    finally:
        academy("chain", "down", "--data", str(data))


@pytest.fixture(scope="module")
def cc(chain):
    client = ChainClient.from_conf(chain["chainmaker"]["sdk_config"])
    yield client
    client.stop()


def _crypto(chain) -> Path:
    return Path(chain["chainmaker"]["crypto_config"])


def _majority(cc) -> int:
    """MAJORITY counts every org in the trust roots: it grows as orgs join."""
    return len(cc.get_chain_config().trust_roots) // 2 + 1


def _update(cc, chain, payload, orgs=None):
    """Send ``payload`` endorsed by the admins of ``orgs`` (default: orgs 1.. as many as a
    majority needs)."""
    orgs = orgs or range(1, _majority(cc) + 1)
    endorsers = cc.create_endorsers(payload, admins(chain, orgs))
    return cc.send_chain_config_update_request(payload, endorsers, with_sync_result=True)


def _stale_invoke(cc):
    """An invoke signed two hours ago."""
    method, params = calc_evm_method_params("total", [])
    request = cc.get_tx_request("nothing_here", method, params)
    request.payload.timestamp -= 7200
    request.sender.CopyFrom(cc.user.sign(request.payload.SerializeToString()))
    return request


def test_block_settings_change_with_a_majority_of_admins(cc, chain) -> None:
    before = cc.get_chain_config()
    with pytest.raises(RequestError, match="INVALID_PARAMETER.*timestamp"):
        cc.send_tx_request(_stale_invoke(cc))
    payload = cc.create_chain_config_block_update_payload(
        tx_timestamp_verify=False, block_interval=20, block_tx_capacity=500
    )
    assert payload.sequence == before.sequence + 1
    signers = [member_client(chain, ORG.format(i), "admin1") for i in (1, 2, 3)]
    endorsers = [s.sign_chain_config_payload(payload.SerializeToString()) for s in signers]
    for signer in signers:
        signer.stop()
    result = cc.send_chain_config_update_request(payload, endorsers, with_sync_result=True)
    assert result.code == 0, result.message
    after = cc.get_chain_config()
    assert after.sequence == before.sequence + 1
    block = after.block
    assert (block.tx_timestamp_verify, block.block_interval, block.block_tx_capacity) == (
        False,
        20,
        500,
    )
    height = cc.get_block_height_by_tx_id(payload.tx_id)
    assert cc.get_last_config_block().block.header.block_height == height
    assert cc.get_chain_config_by_block_height(height - 1).block.tx_timestamp_verify is True
    _all_nodes_past(chain, height)
    assert cc.send_tx_request(_stale_invoke(cc)).code == 0  # admitted now
    back = cc.create_chain_config_block_update_payload(tx_timestamp_verify=True)
    assert _update(cc, chain, back, orgs=(2, 3, 4)).code == 0
    _all_nodes_past(chain, cc.get_block_height_by_tx_id(back.tx_id))
    with pytest.raises(RequestError, match="INVALID_PARAMETER.*timestamp"):
        cc.send_tx_request(_stale_invoke(cc))


def test_one_admin_or_any_number_of_clients_cannot_change_the_config(cc, chain) -> None:
    payload = cc.create_chain_config_block_update_payload(block_interval=30)
    with pytest.raises(EndorsementNotEnoughError, match="not enough participants"):
        cc.send_chain_config_update_request(
            payload, cc.create_endorsers(payload, admins(chain, (2,)))
        )
    clients = [member_client(chain, ORG.format(i), "client1") for i in (1, 2, 3, 4)]
    endorsers = [c.sign_chain_config_payload(payload.SerializeToString()) for c in clients]
    for client in clients:
        client.stop()
    with pytest.raises(EndorsementNotEnoughError):  # clients' signatures are not admins'
        cc.send_chain_config_update_request(payload, endorsers)
    with pytest.raises(EndorsementNotEnoughError):  # nor is one org signing three times
        one_org = admins(chain, (1,)) * 3
        cc.send_chain_config_update_request(payload, cc.create_endorsers(payload, one_org))
    assert cc.get_chain_config().block.block_interval != 30


def test_a_stale_or_replayed_config_update_is_refused(cc, chain) -> None:
    first = cc.create_chain_config_block_update_payload(block_size=11)
    second = cc.create_chain_config_block_update_payload(block_size=12)
    assert first.sequence == second.sequence  # both built on the same configuration
    endorsed = cc.create_endorsers(first, admins(chain, (1, 2, 3)))
    assert cc.send_chain_config_update_request(first, endorsed, with_sync_result=True).code == 0
    with pytest.raises(InvalidParameter, match="sequence"):
        cc.send_chain_config_update_request(
            second, cc.create_endorsers(second, admins(chain, (1, 2, 3)))
        )
    with pytest.raises(InvalidParameter, match="sequence|duplicate"):  # the very same request
        cc.send_chain_config_update_request(first, endorsed)
    # the same endorsements on a copy with a fresh tx id and the next sequence: they signed
    # other bytes, so they count for nothing
    copy = Payload()
    copy.CopyFrom(first)
    copy.tx_id = first.tx_id[::-1]
    copy.sequence = cc.get_chain_config().sequence + 1
    with pytest.raises(AuthenticationError, match="does not match"):
        cc.send_chain_config_update_request(copy, endorsed)
    assert cc.get_chain_config().block.block_size == 11


def test_a_permission_update_binds_the_requests_after_it(cc, chain) -> None:
    resource = "CHAIN_CONFIG-BLOCK_UPDATE"
    anyone = cc.create_chain_config_permission_update_payload(
        resource, cc.create_policy("ANY", role_list=["admin"])
    )
    with pytest.raises(EndorsementNotEnoughError):  # changing a policy needs a majority too
        cc.send_chain_config_update_request(
            anyone, cc.create_endorsers(anyone, admins(chain, (1,)))
        )
    assert _update(cc, chain, anyone).code == 0
    listed = {p.resource_name: p.policy for p in cc.get_chain_config_permission_list()}
    assert listed[resource].rule == "ANY" and list(listed[resource].role_list) == ["admin"]
    alone = cc.create_chain_config_block_update_payload(block_size=13)
    assert _update(cc, chain, alone, orgs=(4,)).code == 0  # one admin is enough now
    assert cc.get_chain_config().block.block_size == 13
    # deleting the policy restores ChainMaker's default (a majority), never an open door
    assert _update(cc, chain, cc.create_chain_config_permission_delete_payload(resource)).code == 0
    assert resource not in {p.resource_name for p in cc.get_chain_config_permission_list()}
    again = cc.create_chain_config_block_update_payload(block_size=14)
    with pytest.raises(EndorsementNotEnoughError):
        cc.send_chain_config_update_request(again, cc.create_endorsers(again, admins(chain, (4,))))
    stranger = cc.create_chain_config_permission_update_payload(
        resource, cc.create_policy("ANY", org_list=[ORG.format(9)], role_list=["admin"])
    )
    refused = _update(cc, chain, stranger)
    assert refused.code == 2 and "not in the trust roots" in refused.message
    assert resource not in {p.resource_name for p in cc.get_chain_config_permission_list()}


def test_trust_roots_let_a_new_org_in_and_only_it_may_rekey(cc, chain, tmp_path) -> None:
    org = ORG.format(6)
    crypto = _crypto(chain)
    write_org(crypto, org, 1)
    org1_tls = crypto / ORG.format(1) / "user" / "client1"
    outsider = member_client(chain, org, "client1", tls_from=org1_tls)
    with pytest.raises(AuthenticationError, match="not in the trust roots"):
        outsider.get_current_block_height()
    outsider.stop()
    added = cc.create_chain_config_trust_root_add_payload(
        org, [(crypto / org / "ca/ca.crt").read_text()]
    )
    assert _update(cc, chain, added).code == 0
    _all_nodes_past(chain, cc.get_block_height_by_tx_id(added.tx_id))
    member = member_client(chain, org, "client1")  # its own TLS pair: the nodes trust its CA now
    assert member.get_current_block_height() > 0
    member.stop()
    assert org in [t.org_id for t in cc.get_chain_config().trust_roots]

    rekeyed = tmp_path / "rekeyed"
    write_org(rekeyed, org, 1)  # the same org with a new CA and members
    update = cc.create_chain_config_trust_root_update_payload(
        org, [(rekeyed / org / "ca/ca.crt").read_text()]
    )
    with pytest.raises(EndorsementNotEnoughError):  # SELF: other orgs' admins cannot rekey it
        cc.send_chain_config_update_request(
            update, cc.create_endorsers(update, admins(chain, (1, 2, 3, 4)))
        )
    own_admin = {
        "org_id": org,
        "user_sign_crt_file_path": str(crypto / org / "user/admin1/admin1.sign.crt"),
        "user_sign_key_file_path": str(crypto / org / "user/admin1/admin1.sign.key"),
    }
    endorsers = cc.create_endorsers(update, [own_admin])
    assert cc.send_chain_config_update_request(update, endorsers, with_sync_result=True).code == 0
    _all_nodes_past(chain, cc.get_block_height_by_tx_id(update.tx_id))
    old = member_client(chain, org, "client1", tls_from=org1_tls)
    with pytest.raises(AuthenticationError, match="unknown CA"):
        old.get_current_block_height()
    old.stop()
    new = member_client(chain, org, "client1", crypto=rekeyed)
    assert new.get_current_block_height() > 0
    new.stop()


def test_cert_add_lets_a_hash_sign_and_only_admins_delete_it(cc, chain) -> None:
    other = member_client(chain, ORG.format(2), "client1")
    assert other.enable_cert_hash() is True  # CERT_ADD, then requests name the hash alone
    digest = other.user.cert_hash
    assert other.get_current_block_height() > 0
    stored = cc.query_cert([digest]).cert_infos[0]
    assert stored.hash == digest
    assert (
        stored.cert
        == (_crypto(chain) / ORG.format(2) / "user/client1/client1.sign.crt").read_bytes()
    )
    delete = cc.create_cert_delete_payload([digest])
    clients = [
        {
            "org_id": ORG.format(i),
            "user_sign_crt_file_path": str(
                _crypto(chain) / ORG.format(i) / "user/client1/client1.sign.crt"
            ),
            "user_sign_key_file_path": str(
                _crypto(chain) / ORG.format(i) / "user/client1/client1.sign.key"
            ),
        }
        for i in (1, 3, 4)
    ]
    with pytest.raises(EndorsementNotEnoughError):  # a cert op is for admins
        cc.send_cert_manage_request(delete, endorsers=cc.create_endorsers(delete, clients))
    freeze = cc.create_cert_freeze_payload([stored.cert.decode()])
    with pytest.raises(EndorsementNotEnoughError):
        cc.send_cert_manage_request(freeze, endorsers=cc.create_endorsers(freeze, clients))
    endorsers = cc.create_endorsers(delete, admins(chain, (3,)))
    deleted = cc.send_cert_manage_request(delete, endorsers=endorsers, with_sync_result=True)
    assert deleted.code == 0, deleted.message
    _all_nodes_past(chain, cc.get_block_height_by_tx_id(delete.tx_id))
    assert cc.query_cert([digest]).cert_infos[0].cert == b""
    with pytest.raises(AuthenticationError, match="unknown signer"):
        other.get_current_block_height()
    other.disable_cert_hash()
    assert other.get_current_block_height() > 0  # the full certificate still signs
    other.stop()


def test_pool_and_consensus_state_come_from_the_nodes(cc, chain) -> None:
    one = ChainClient.from_conf(chain["chainmaker"]["sdk_config"], conn_node=0)
    ids = [n["id"] for n in chain["nodes"]]
    assert sorted(one.get_consensus_validators()) == sorted(ids)
    assert one.get_consensus_height() > one.get_current_block_height() - 1
    state = one.get_consensus_state_json()
    assert state["validators"] == 4 and state["quorum"] == 3
    other = ChainClient.from_conf(chain["chainmaker"]["sdk_config"], conn_node=0)
    other.chain_id = "chain2"
    with pytest.raises(grpc.RpcError) as wrong:  # another chain's pool is not this node's
        other.get_pool_status()
    assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    other.stop()
    urls = [n["rpc_url"] for n in chain["nodes"]]
    for url in urls:  # no block can take a request out of the pool while this looks
        rpc(url, "minichain_stopValidator", [])
    try:
        method, params = calc_evm_method_params("total", [])
        request = one.get_tx_request("nothing_here", method, params)
        assert one.send_tx_request(request).code == 0
        config = one.create_chain_config_block_update_payload(block_size=15)
        endorsers = one.create_endorsers(config, admins(chain, range(1, _majority(one) + 1)))
        assert one.send_chain_config_update_request(config, endorsers, with_sync_result=False)
        common, configured = request.payload.tx_id, config.tx_id
        status = one.get_pool_status()
        assert (status.common_tx_num_in_queue, status.config_tx_num_in_queue) == (1, 1)
        assert status.common_tx_num_in_pending == 0
        assert set(one.get_tx_ids_by_type_and_stage()) == {common, configured}
        assert one.get_tx_ids_by_type_and_stage(TxType.COMMON_TX, TxStage.IN_QUEUE) == [common]
        assert one.get_tx_ids_by_type_and_stage(TxType.CONFIG_TX) == [configured]
        assert one.get_tx_ids_by_type_and_stage(tx_stage=TxStage.IN_PENDING) == []
        txs, missing = one.get_txs_in_pool_by_tx_ids([common, "nosuchtx"])
        assert [t.payload.tx_id for t in txs] == [common] and list(missing) == ["nosuchtx"]
        assert one.get_tx_status(common) == TxStatus.Value("UNPACKAGED")
        assert one.get_tx_status("nosuchtx") == TxStatus.Value("UNKNOWN_STATUS")
    finally:
        for url in urls:
            rpc(url, "minichain_resumeValidator", [])
    wait_until(
        lambda: one.get_tx_status(configured) == TxStatus.Value("COMMITTED"),
        LONG,
        message="the pooled requests were not committed after the validators resumed",
    )
    assert one.get_tx_status(common) == TxStatus.Value("COMMITTED")
    assert one.get_tx_ids_by_type_and_stage() == []
    assert one.get_chain_config().block.block_size == 15
    one.stop()


def test_a_fifth_org_joins_as_validator_and_leaves_again(cc, chain) -> None:
    org = ORG.format(5)
    root = _crypto(chain).parent
    index, entry = prepare_joining_node(root, org)
    ca = (_crypto(chain) / org / "ca/ca.crt").read_text()
    assert _update(cc, chain, cc.create_chain_config_trust_root_add_payload(org, [ca])).code == 0
    node_id = (_crypto(chain) / org / "node/consensus1/consensus1.nodeid").read_text().strip()
    assert node_id == entry.id
    add = cc.create_chain_config_consensus_node_org_add_payload(org, [node_id])
    need = _majority(cc)  # the new org counts among the orgs already
    short = cc.create_endorsers(add, admins(chain, range(1, need)))
    with pytest.raises(EndorsementNotEnoughError, match=f"{need - 1} org"):
        cc.send_chain_config_update_request(add, short)
    assert _update(cc, chain, add).code == 0
    added_at = cc.get_block_height_by_tx_id(add.tx_id)
    assert [n.org_id for n in cc.get_chain_config().consensus.nodes][-1] == org
    network = start_network(root)  # starts the one node that does not run yet
    new_rpc = network.rpc_url(index)

    def voted() -> bool:
        """The newest block's commit proof carries the new validator's precommit."""
        head = _ask(new_rpc, "eth_blockNumber", [])
        if head is None or int(head, 16) <= added_at + 1:
            return False
        evidence = _ask(network.rpc_url(0), "minichain_commitEvidence", [int(head, 16)])
        return evidence is not None and node_id in {v["voter"] for v in evidence["precommits"]}

    wait_until(voted, LONG, message="the fifth validator never signed a commit")
    for i in range(len(network.nodes)):
        one = ChainClient.from_conf(chain["chainmaker"]["sdk_config"], conn_node=i)
        assert node_id in one.get_consensus_validators()  # the new node's own answer too
        assert one.get_consensus_state_json()["validators"] == 5
        one.stop()
    delete = cc.create_chain_config_consensus_node_org_delete_payload(org)
    assert _update(cc, chain, delete).code == 0
    removed_at = cc.get_block_height_by_tx_id(delete.tx_id)
    wait_until(
        lambda: min(_heights(chain)) > removed_at + 2, LONG, message="the chain stopped after"
    )
    assert node_id not in cc.get_consensus_validators()
    evidence = rpc(network.rpc_url(0), "minichain_commitEvidence", [removed_at + 2])
    assert node_id not in {v["voter"] for v in evidence["precommits"]}
