"""The official ChainMaker SDK, unmodified, against `academy chain up --orgs 4`: four orgs, four
TBFT validators, each serving ChainMaker's RpcNode over mutual TLS beside its JSON-RPC."""

from __future__ import annotations

import json
import os
from pathlib import Path

import grpc
import pytest
from chainmaker import ChainClient, User
from chainmaker.exceptions import (
    AuthenticationError,
    ContractFail,
    EndorsementNotEnoughError,
    InvalidParameter,
    RequestError,
)
from chainmaker.keys import RuntimeType
from chainmaker.protos.common.result_pb2 import TxResponse
from chainmaker.utils.evm_utils import calc_evm_method_params
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from labs.minichain.chainmaker.cryptogen import issue_member_cert, make_org_ca
from labs.minichain.contracts import compile_solidity

from .sdkchain import ORG, academy, admins, member_client, settled

BALANCE = """
pragma solidity ^0.8.20;
contract Balance {
    mapping(address => uint256) public balances;
    uint256 public total;
    event Updated(address indexed who, uint256 amount);
    constructor(uint256 start) { total = start; }
    function updateBalance(uint256 amount, address who) public {
        require(amount < 1000000, "amount too large");
        balances[who] = amount;
        total += amount;
        emit Updated(who, amount);
    }
}
"""


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    data = tmp_path_factory.mktemp("cm") / "chain"
    up = academy("chain", "up", "--data", str(data), "--orgs", "4", "--detach")
    try:
        assert up.returncode == 0, up.stderr
        summary = json.loads(up.stdout)  # stdout is the JSON alone, even on a first up
        yield summary
    finally:
        academy("chain", "down", "--data", str(data))


@pytest.fixture(scope="module")
def cc(chain):
    client = ChainClient.from_conf(chain["chainmaker"]["sdk_config"])
    yield client
    client.stop()


@pytest.fixture(scope="module")
def balance(tmp_path_factory):
    compiled = compile_solidity(BALANCE, contract="Balance")
    path = tmp_path_factory.mktemp("bin") / "balance.bin"
    path.write_text(compiled.bytecode[2:])  # the SDK reads EVM byte code as hex text
    return path


@pytest.fixture(scope="module")
def deployed(cc, chain, balance) -> str:
    """A Balance contract created through the SDK (total starts at 7), for the tests that use one."""
    assert _create(cc, chain, balance, "balance001").code == 0
    return "balance001"


def _create(cc, chain, balance, name, orgs=(1, 2, 3)):
    payload = cc.create_contract_create_payload(
        contract_name=name,
        version="1.0",
        byte_code_path=str(balance),
        runtime_type=RuntimeType.EVM,
        params=[{"uint256": "7"}],
    )
    endorsers = cc.create_endorsers(payload, admins(chain, orgs))
    created = cc.send_contract_manage_request(payload, endorsers=endorsers, with_sync_result=True)
    settled(chain)
    return created


def _invoke(cc, name, amount, who="0xa166c92f4c8118905ad984919dc683a7bdb295c1"):
    # ChainClient.invoke_contract of SDK 3.0.7 drops its payload (its gas helper returns None),
    # so the SDK's public get_tx_request / send_tx_request pair sends the same request.
    method, params = calc_evm_method_params(
        "updateBalance", [{"uint256": str(amount)}, {"address": who}]
    )
    return cc.send_tx_request(cc.get_tx_request(name, method, params), with_sync_result=True)


def _total(cc, name) -> int:
    method, params = calc_evm_method_params("total", [])
    return int.from_bytes(cc.query_contract(name, method, params).contract_result.result, "big")


def test_up_prints_grpc_addresses_and_the_chainmaker_files(chain) -> None:
    cm = chain["chainmaker"]
    assert cm["chain_id"] == "chain1"
    assert Path(cm["sdk_config"]).is_absolute() and Path(cm["sdk_config"]).exists()
    crypto = Path(cm["crypto_config"])
    for i in range(1, 5):
        for member in ("user/admin1/admin1", "user/client1/client1", "node/consensus1/consensus1"):
            for kind in ("sign.key", "sign.crt", "tls.key", "tls.crt"):
                assert (crypto / ORG.format(i) / f"{member}.{kind}").exists()
        assert (crypto / ORG.format(i) / "ca" / "ca.crt").exists()
    assert all(":" in n["grpc_addr"] for n in chain["nodes"]) and len(chain["nodes"]) == 4


def test_readme_example_create_with_three_admins_invoke_query(cc, chain, balance) -> None:
    assert cc.get_chainmaker_server_version() == "v3.0.0"
    created = _create(cc, chain, balance, "readme001")
    assert created.code == 0, created.message
    assert _total(cc, "readme001") == 7  # the constructor got its ABI parameter
    result = _invoke(cc, "readme001", 10000)
    assert result.code == 0, result.message
    event = result.contract_result.contract_event[0]
    assert event.topic == keccak(b"Updated(address,uint256)").hex()
    assert _total(cc, "readme001") == 10007
    info = cc.get_contract_info("readme001")
    assert info.name == "readme001" and info.version == "1.0"
    assert info.address == keccak(b"readme001")[12:].hex()


def test_chain_queries(cc, chain, deployed) -> None:
    method, params = calc_evm_method_params(
        "updateBalance",
        [{"uint256": "6"}, {"address": "0xa166c92f4c8118905ad984919dc683a7bdb295c1"}],
    )
    request = cc.get_tx_request(deployed, method, params)
    cc.send_tx_request(request, with_sync_result=True)
    tx_id = request.payload.tx_id
    info = cc.get_tx_by_tx_id(tx_id)
    assert info.transaction.payload.tx_id == tx_id and info.transaction.result.code == 0
    block = cc.get_block_by_height(info.block_height).block
    assert block.header.block_height == info.block_height
    assert tx_id in [t.payload.tx_id for t in block.txs]
    assert cc.get_block_by_hash(block.header.block_hash.hex()).block.header.block_height == (
        info.block_height
    )
    assert cc.get_block_by_tx_id(tx_id).block.header.block_hash == block.header.block_hash
    assert cc.get_block_height_by_tx_id(tx_id) == info.block_height
    assert cc.get_last_config_block().block.header.block_height == 0
    assert cc.get_current_block_height() >= info.block_height
    chain_info = cc.get_chain_info()
    assert len(chain_info.node_list) == 4 and chain_info.block_height >= info.block_height
    config = cc.get_chain_config()
    assert config.chain_id == "chain1" and len(config.trust_roots) == 4
    assert [n.org_id for n in config.consensus.nodes] == [ORG.format(i) for i in range(1, 5)]


def test_web3_and_the_sdk_see_one_contract(cc, chain, balance) -> None:
    assert _create(cc, chain, balance, "shared").code == 0
    w3 = Web3(Web3.HTTPProvider(chain["nodes"][1]["rpc_url"]))
    address = to_checksum_address(keccak(b"shared")[12:])
    abi = json.loads(json.dumps(compile_solidity(BALANCE, contract="Balance").abi))
    contract = w3.eth.contract(address=address, abi=abi)
    assert contract.functions.total().call() == 7
    account = w3.eth.account.from_key(chain["accounts"][0]["private_key"])
    tx = contract.functions.updateBalance(30, account.address).build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction), timeout=120
    )
    assert receipt.status == 1
    assert _total(cc, "shared") == 37  # the SDK reads what web3.py wrote
    assert _invoke(cc, "shared", 3).code == 0
    assert contract.functions.total().call() == 40  # and web3.py what the SDK wrote


def test_a_revert_reason_reaches_the_result(cc, deployed) -> None:
    result = _invoke(cc, deployed, 10**7)
    assert result.code == 4  # CONTRACT_FAIL
    assert "amount too large" in result.message


def test_one_admin_alone_cannot_create_a_contract(cc, chain, balance) -> None:
    with pytest.raises(EndorsementNotEnoughError, match="not enough participants"):
        _create(cc, chain, balance, "lonely", orgs=(2,))
    with pytest.raises(EndorsementNotEnoughError):
        _create(cc, chain, balance, "pair", orgs=(1, 2))  # MAJORITY of 4 orgs is 3
    assert cc.get_contract_info("lonely") is None


def test_a_certificate_from_an_unknown_ca_is_refused(cc, deployed) -> None:
    ca_key, ca_cert = make_org_ca(ORG.format(1))  # same org name, another CA
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_member_cert(
        ca_key, ca_cert, key.public_key(), ORG.format(1), "client", "rogue.sign", tls=False
    )
    rogue = User(
        org_id=ORG.format(1),
        sign_key_bytes=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        sign_cert_bytes=cert.public_bytes(serialization.Encoding.PEM),
    )
    method, params = calc_evm_method_params("total", [])
    # query_contract(signer=...) of SDK 3.0.7 does not pass the signer on; the client's signer does
    own, cc.signer = cc.signer, rogue
    try:
        with pytest.raises(AuthenticationError, match="unknown CA"):
            cc.query_contract(deployed, method, params)
    finally:
        cc.signer = own
    assert cc.query_contract(deployed, method, params).code == 0


def test_a_bad_signature_is_refused(cc, deployed) -> None:
    method, params = calc_evm_method_params("total", [])
    request = cc.get_tx_request(deployed, method, params)
    signature = bytearray(request.sender.signature)
    signature[-1] ^= 1
    request.sender.signature = bytes(signature)
    with pytest.raises(RequestError) as refused:
        cc.send_tx_request(request)
    assert refused.value.err_code == 5 and "does not match" in refused.value.err_msg


def test_wrong_chain_id_and_unknown_contract_get_chainmaker_codes(cc, chain, deployed) -> None:
    other = ChainClient.from_conf(chain["chainmaker"]["sdk_config"])
    other.chain_id = "chain2"
    method, params = calc_evm_method_params("total", [])
    with pytest.raises(InvalidParameter, match="chain id"):
        other.query_contract(deployed, method, params)
    other.stop()
    with pytest.raises(ContractFail, match="does not exist"):
        cc.query_contract("no_such_contract", method, params)


def test_malformed_protobuf_gets_invalid_parameter_and_the_node_lives_on(
    cc, chain, deployed
) -> None:
    crypto = Path(chain["chainmaker"]["crypto_config"])
    client = crypto / ORG.format(1) / "user" / "client1"
    roots = b"".join((crypto / ORG.format(i) / "ca" / "ca.crt").read_bytes() for i in range(1, 5))
    creds = grpc.ssl_channel_credentials(
        roots, (client / "client1.tls.key").read_bytes(), (client / "client1.tls.crt").read_bytes()
    )
    target = chain["nodes"][2]["grpc_addr"]
    with grpc.secure_channel(
        target, creds, options=[("grpc.ssl_target_name_override", "chainmaker.org")]
    ) as channel:
        send = channel.unary_unary(
            "/api.RpcNode/SendRequest",
            request_serializer=None,
            response_deserializer=TxResponse.FromString,
        )
        for junk in (b"\xff\xff\xff\xff", b"\x0a\x05abc", b"", os.urandom(4096)):
            answer = send(junk, timeout=30)
            assert answer.code == 2, (junk[:8], answer)  # INVALID_PARAMETER
        oversize = send(b"\x0a" + os.urandom(11 * 1024 * 1024), timeout=60)
        assert oversize.code == 2 and "more than" in oversize.message
    before = cc.get_current_block_height()
    for i in range(4):  # every node still answers
        one = ChainClient.from_conf(chain["chainmaker"]["sdk_config"], conn_node=i)
        assert one.get_chainmaker_server_version() == "v3.0.0"
        one.stop()
    assert _invoke(cc, deployed, 1).code == 0  # and the chain still commits
    assert cc.get_current_block_height() > before


def test_upgrade_freeze_unfreeze_revoke_under_the_admins_policy(cc, chain, balance) -> None:
    assert _create(cc, chain, balance, "lifecycle").code == 0
    assert _invoke(cc, "lifecycle", 3).code == 0
    endorsing = admins(chain, (2, 3, 4))

    def manage(payload):
        endorsers = cc.create_endorsers(payload, endorsing)
        return cc.send_contract_manage_request(payload, endorsers=endorsers, with_sync_result=True)

    upgraded = manage(
        cc.create_contract_upgrade_payload(
            "lifecycle", "2.0", str(balance), RuntimeType.EVM, params=[{"uint256": "100"}]
        )
    )
    assert upgraded.code == 0, upgraded.message
    assert cc.get_contract_info("lifecycle").version == "2.0"
    assert _total(cc, "lifecycle") == 100  # the new constructor ran on the same storage...
    method, params = calc_evm_method_params(
        "balances", [{"address": "0xa166c92f4c8118905ad984919dc683a7bdb295c1"}]
    )
    kept = cc.query_contract("lifecycle", method, params).contract_result.result
    assert int.from_bytes(kept, "big") == 3  # ...which kept what the first version wrote
    assert manage(cc.create_contract_freeze_payload("lifecycle")).code == 0
    frozen = _invoke(cc, "lifecycle", 1)
    assert frozen.code == 36, frozen.message  # CONTRACT_FREEZE_FAILED
    assert manage(cc.create_contract_unfreeze_payload("lifecycle")).code == 0
    assert _invoke(cc, "lifecycle", 1).code == 0
    assert manage(cc.create_contract_revoke_payload("lifecycle")).code == 0
    revoked = _invoke(cc, "lifecycle", 1)
    assert revoked.code == 38, revoked.message  # CONTRACT_REVOKE_FAILED
    with pytest.raises(EndorsementNotEnoughError):  # one admin cannot bring it back either
        payload = cc.create_contract_unfreeze_payload("lifecycle")
        cc.send_contract_manage_request(
            payload, endorsers=cc.create_endorsers(payload, admins(chain, (1,)))
        )


def test_subscriptions_to_blocks_txs_and_contract_events(cc, deployed) -> None:
    method, params = calc_evm_method_params(
        "updateBalance",
        [{"uint256": "11"}, {"address": "0xa166c92f4c8118905ad984919dc683a7bdb295c1"}],
    )
    request = cc.get_tx_request(deployed, method, params)
    assert cc.send_tx_request(request, with_sync_result=True).code == 0
    tx_id = request.payload.tx_id
    height = cc.get_block_height_by_tx_id(tx_id)

    blocks: list = []
    cc.subscribe_block(height, height, callback=blocks.append)
    assert [b.block.header.block_height for b in blocks] == [height]
    assert tx_id in [t.payload.tx_id for t in blocks[0].block.txs]

    txs: list = []
    cc.subscribe_tx(height - 1, height, tx_ids=[tx_id], callback=txs.append)
    assert [t.payload.tx_id for t in txs] == [tx_id] and txs[0].result.code == 0

    events: list = []
    topic = keccak(b"Updated(address,uint256)").hex()
    cc.subscribe_contract_event(height, height, topic, deployed, callback=events.append)
    assert len(events) == 1
    event = events[0].contract_events[0]
    assert (event.tx_id, event.contract_name, event.block_height) == (tx_id, deployed, height)
    assert int(event.event_data[-1], 16) == 11

    later = cc.get_current_block_height() + 2  # not committed yet: the stream waits for it
    headers: list = []
    cc.subscribe_block(later, later, only_header=True, callback=headers.append)
    assert [h.block_height for h in headers] == [later]


def test_a_frozen_or_revoked_certificate_is_refused(cc, chain, deployed) -> None:
    crypto = Path(chain["chainmaker"]["crypto_config"])
    user = crypto / ORG.format(2) / "user" / "client1"
    other = member_client(chain, ORG.format(2), "client1")
    method, params = calc_evm_method_params("total", [])
    assert other.query_contract(deployed, method, params).code == 0
    cert = (user / "client1.sign.crt").read_text()
    org2_admin = admins(chain, (2,))

    def manage(payload):
        endorsers = cc.create_endorsers(payload, org2_admin)
        return cc.send_cert_manage_request(payload, endorsers=endorsers, with_sync_result=True)

    assert manage(cc.create_cert_freeze_payload([cert])).code == 0
    with pytest.raises(AuthenticationError, match="frozen"):
        other.query_contract(deployed, method, params)
    assert cc.query_contract(deployed, method, params).code == 0  # org1's client is not touched
    assert manage(cc.create_cert_unfreeze_payload([cert])).code == 0
    assert other.query_contract(deployed, method, params).code == 0

    ca = crypto / ORG.format(2) / "ca"
    crl = cc.create_cert_crl(str(user / "client1.sign.crt"), str(ca / "ca.key"), str(ca / "ca.crt"))
    assert manage(cc.create_cert_revoke_payload(crl)).code == 0
    with pytest.raises(AuthenticationError, match="revoked"):
        other.query_contract(deployed, method, params)
    with pytest.raises(RequestError):  # its invokes too
        other.send_tx_request(other.get_tx_request(deployed, method, params))
    other.stop()


def test_labs_client_hands_out_sdk_clients_per_org_and_role(chain, deployed, monkeypatch) -> None:
    from labs import client as labs_client

    for name in [k for k in os.environ if k.startswith("ACADEMY_")]:
        monkeypatch.delenv(name)
    with pytest.raises(labs_client.LiveChainRequired, match="ACADEMY_CHAINMAKER_SDK_CONFIG"):
        labs_client.chainmaker_client()
    monkeypatch.setenv("ACADEMY_CHAINMAKER_SDK_CONFIG", chain["chainmaker"]["sdk_config"])
    admin = labs_client.chainmaker_client(org=3, user="admin1")
    assert admin.user.org_id == ORG.format(3) and admin.user.role == "ADMIN"
    method, params = calc_evm_method_params("total", [])
    assert admin.query_contract(deployed, method, params).code == 0
    admin.stop()
    with pytest.raises(ValueError, match="no member"):
        labs_client.chainmaker_client(org=9)
