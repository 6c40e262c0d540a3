"""Chain configuration updates and certificate changes inside blocks, on in-process applications
(no network): the order within a block, what validators agree on, and the update rules."""

from __future__ import annotations

import hashlib
import time

import pytest
from chainmaker.user import User
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from labs.minichain.chainmaker import keys, pb, sm2
from labs.minichain.chainmaker.chainconfig import ChainMakerConfig, Policy
from labs.minichain.chainmaker.chainconfig_update import (
    block_update,
    check_policy,
    node_org_add,
    node_org_delete,
    trust_root_add,
    trust_root_delete,
)
from labs.minichain.chainmaker.cryptogen import make_org_ca, write_key_member
from labs.minichain.chainmaker.errors import RequestRefused
from labs.minichain.execution import ExecutionApp
from labs.minichain.genesis import load_genesis
from labs.minichain.netconfig import init_network
from labs.minichain.storage import Store

ORG = "wx-org{}.chainmaker.org"


@pytest.fixture
def chain(tmp_path):
    init_network(tmp_path / "chain", nodes=2, consensus="tbft", accounts=1)
    genesis = load_genesis(tmp_path / "chain" / "genesis.json")
    crypto = tmp_path / "chain" / "crypto-config"

    def user(org: int, name: str) -> User:
        folder = crypto / ORG.format(org) / "user" / name
        return User(
            org_id=ORG.format(org),
            sign_key_bytes=(folder / f"{name}.sign.key").read_bytes(),
            sign_cert_bytes=(folder / f"{name}.sign.crt").read_bytes(),
        )

    return genesis, user


def _request(sender: User, contract: str, method: str, params: dict, endorsers=(), seq=0) -> bytes:
    payload = pb.Payload(
        chain_id="chain1",
        tx_type=pb.TxType.Value("INVOKE_CONTRACT"),
        tx_id=f"t{time.time_ns()}",
        timestamp=int(time.time()),
        contract_name=contract,
        method=method,
        parameters=[pb.KeyValuePair(key=k, value=v) for k, v in params.items()],
        sequence=seq,
    )
    raw = payload.SerializeToString()
    return pb.TxRequest(
        payload=payload, sender=sender.sign(raw), endorsers=[e.sign(raw) for e in endorsers]
    ).SerializeToString()


def _results(app: ExecutionApp, block) -> list:
    out = []
    for raw in block.cm:
        request = pb.TxRequest()
        request.ParseFromString(raw)
        result = pb.Result()
        result.ParseFromString(app.store.cm_tx(request.payload.tx_id)[2])
        out.append(result)
    return out


def test_two_updates_of_one_sequence_in_one_block_apply_once(chain) -> None:
    genesis, user = chain
    proposer = ExecutionApp(Store(":memory:"), genesis)
    validator = ExecutionApp(Store(":memory:"), genesis)
    admins = [user(1, "admin1"), user(2, "admin1")]
    for size in (b"20", b"30"):  # both built on sequence 0: the door cannot tell yet
        proposer.check_cm(
            _request(admins[0], "CHAIN_CONFIG", "BLOCK_UPDATE", {"block_size": size}, admins, 1)
        )
    block = proposer.build_block(1, b"\x01" * 20, time.time())
    assert validator.why_invalid(block) is None  # every validator reaches the same state
    proposer.commit_block(block)
    validator.commit_block(block)
    first, second = _results(proposer, block)
    assert first.code == 0
    assert second.code == 2 and "configuration is at 1, so an update names 2" in second.message
    config = proposer.chainmaker.configs.config(proposer.head_state())
    assert (config.sequence, config.block.block_size) == (1, 20)
    assert proposer.chainmaker.configs.last_block(validator.head_state()) == 1
    with pytest.raises(RequestRefused, match="sequence"):  # and the door knows it now
        proposer.check_cm(
            _request(admins[0], "CHAIN_CONFIG", "BLOCK_UPDATE", {"block_size": b"40"}, admins, 1)
        )


def test_a_freeze_earlier_in_the_block_refuses_a_request_admitted_before_it(chain) -> None:
    genesis, user = chain
    app = ExecutionApp(Store(":memory:"), genesis)
    client, admin = user(2, "client1"), user(1, "admin1")
    app.check_cm(
        _request(admin, "CERT_MANAGE", "CERTS_FREEZE", {"certs": client.sign_cert_bytes}, [admin])
    )
    app.check_cm(_request(client, "nothing_here", "00000000", {}))  # admitted while in standing
    block = app.build_block(1, b"\x01" * 20, time.time())
    app.commit_block(block)
    frozen, refused = _results(app, block)
    assert frozen.code == 0, frozen.message
    assert refused.code == 5 and "frozen" in refused.message
    with pytest.raises(RequestRefused, match="frozen"):
        app.check_cm(_request(client, "nothing_here", "00000000", {}))


def genesis_member_cert(chain) -> bytes:
    _, user = chain
    return user(1, "client1").sign_cert_bytes


def _config(chain) -> ChainMakerConfig:
    genesis, _ = chain
    return genesis.chainmaker


def test_updates_that_would_break_the_chain_are_refused(chain) -> None:
    config = _config(chain)
    org1, org2 = ORG.format(1), ORG.format(2)
    with pytest.raises(RequestRefused, match="runs consensus nodes"):
        trust_root_delete(config, {"org_id": org1.encode()})
    one_left = node_org_delete(config, {"org_id": org1.encode()})
    with pytest.raises(RequestRefused, match="without consensus nodes"):
        node_org_delete(one_left, {"org_id": org2.encode()})
    taken = config.consensus_nodes[0].node_id[0]
    with pytest.raises(RequestRefused, match="consensus org already"):
        node_org_add(config, {"org_id": org1.encode(), "node_ids": b"x"})
    with pytest.raises(RequestRefused, match="not in the trust roots"):
        node_org_add(config, {"org_id": b"wx-org9.chainmaker.org", "node_ids": taken.encode()})
    member_cert = genesis_member_cert(chain)
    with pytest.raises(RequestRefused, match="not a CA certificate"):
        trust_root_add(config, {"org_id": b"wx-org7.chainmaker.org", "root": member_cert})
    with pytest.raises(RequestRefused, match="in the trust roots already"):
        trust_root_add(
            config, {"org_id": org1.encode(), "root": config.trust_roots[0].root[0].encode()}
        )
    with pytest.raises(RequestRefused, match="at least 600"):
        block_update(config, {"tx_timeout": b"10"})
    with pytest.raises(RequestRefused, match="true or false"):
        block_update(config, {"tx_timestamp_verify": b"yes"})
    with pytest.raises(RequestRefused, match="changes nothing"):
        block_update(config, {})


@pytest.mark.parametrize(
    ("rule", "roles", "orgs", "problem"),
    [
        ("3/2", ["admin"], [], "unknown"),
        ("0%", ["admin"], [], "unknown"),
        ("MOST", ["admin"], [], "unknown"),
        ("ANY", ["root"], [], "role 'root'"),
        ("ANY", ["admin"], ["wx-org9.chainmaker.org"], "not in the trust roots"),
    ],
)
def test_a_policy_must_be_one_chainmaker_knows(chain, rule, roles, orgs, problem) -> None:
    policy = Policy(rule=rule, role_list=roles, org_list=orgs)
    with pytest.raises(RequestRefused, match=problem):
        check_policy(_config(chain), "CHAIN_CONFIG-BLOCK_UPDATE", policy)
    check_policy(_config(chain), "X", Policy(rule="2/3", role_list=["admin", "client"]))


def test_a_deleted_policy_falls_back_to_chainmakers_default(chain) -> None:
    config = _config(chain).model_copy(update={"resource_policies": []})
    assert config.policy("CHAIN_CONFIG-PERMISSION_UPDATE") == Policy(
        rule="MAJORITY", role_list=["admin"]
    )
    assert config.policy("CERT_MANAGE-CERTS_DELETE") == Policy(rule="ANY", role_list=["admin"])
    assert config.policy("CHAIN_CONFIG-TRUST_ROOT_UPDATE").rule == "SELF"
    assert config.policy("SOMETHING_ELSE") is None


def test_a_frozen_admin_endorses_nothing(chain) -> None:
    genesis, user = chain
    app = ExecutionApp(Store(":memory:"), genesis)
    admins = [user(1, "admin1"), user(2, "admin1")]
    freeze = {"certs": admins[1].sign_cert_bytes}
    app.check_cm(_request(admins[0], "CERT_MANAGE", "CERTS_FREEZE", freeze, admins[:1]))
    update = _request(admins[0], "CHAIN_CONFIG", "BLOCK_UPDATE", {"block_size": b"20"}, admins, 1)
    app.check_cm(update)  # admitted while org2's admin was in standing
    block = app.build_block(1, b"\x01" * 20, time.time())
    app.commit_block(block)
    frozen, refused = _results(app, block)
    assert frozen.code == 0, frozen.message
    assert refused.code == 5 and "certificate of an endorser is frozen" in refused.message
    assert app.chainmaker.configs.config(app.head_state()).sequence == 0
    with pytest.raises(RequestRefused, match="endorser is frozen"):
        app.check_cm(
            _request(admins[0], "CHAIN_CONFIG", "BLOCK_UPDATE", {"block_size": b"30"}, admins, 1)
        )


def _genesis(tmp_path, **options):
    init_network(tmp_path / "chain", nodes=2, consensus="tbft", accounts=1, **options)
    return load_genesis(tmp_path / "chain" / "genesis.json"), tmp_path / "chain" / "crypto-config"


def test_an_sm2_chain_updates_its_config_and_knows_signers_by_sm3_cert_hash(tmp_path) -> None:
    genesis, crypto = _genesis(tmp_path, crypto="sm2")

    def user(org: int, name: str) -> User:
        folder = crypto / ORG.format(org) / "user" / name
        return User(
            org_id=ORG.format(org),
            sign_key_bytes=(folder / f"{name}.sign.key").read_bytes(),
            sign_cert_bytes=(folder / f"{name}.sign.crt").read_bytes(),
        )

    app = ExecutionApp(Store(":memory:"), genesis)
    admins, client = [user(1, "admin1"), user(2, "admin1")], user(2, "client1")
    app.check_cm(
        _request(admins[0], "CHAIN_CONFIG", "BLOCK_UPDATE", {"block_size": b"21"}, admins, 1)
    )
    app.check_cm(_request(client, "CERT_MANAGE", "CERT_ADD", {}))
    block = app.build_block(1, b"\x01" * 20, time.time())
    app.commit_block(block)
    updated, added = _results(app, block)
    assert updated.code == 0, updated.message
    config = app.chainmaker.configs.config(app.head_state())
    assert (config.sequence, config.block.block_size, config.crypto_profile) == (1, 21, "sm2")
    cert = x509.load_pem_x509_certificate(client.sign_cert_bytes)
    digest = sm2.sm3(cert.public_bytes(serialization.Encoding.DER))
    assert added.code == 0 and added.contract_result.result == digest.hex().encode()

    def by_hash(known: bytes) -> bytes:
        payload = pb.Payload(
            chain_id="chain1",
            tx_type=pb.TxType.Value("INVOKE_CONTRACT"),
            tx_id=f"t{time.time_ns()}",
            timestamp=int(time.time()),
            contract_name="nothing_here",
            method="00000000",
        )
        raw = payload.SerializeToString()
        entry = client.sign(raw)
        entry.signer.member_type = pb.MemberType.Value("CERT_HASH")
        entry.signer.member_info = known
        return pb.TxRequest(payload=payload, sender=entry).SerializeToString()

    assert app.check_cm(by_hash(digest)).sender.cert == cert
    with pytest.raises(RequestRefused, match="not on chain"):
        app.check_cm(
            by_hash(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest())
        )


def test_a_key_chain_takes_admin_keys_as_roots_and_has_no_cert_management(tmp_path) -> None:
    genesis, crypto = _genesis(tmp_path, identity_mode="permissionedWithKey")
    config = genesis.chainmaker
    org = b"wx-org7.chainmaker.org"
    pem = write_key_member(tmp_path / "org7", "user", "admin1", "ecdsa").read_bytes()
    wrapped = b"\n" + pem.replace(b"\n", b"\r\n") + b","  # any PEM wrapping of the same key
    added = trust_root_add(config, {"org_id": org, "root": wrapped})
    assert added.trust_roots[-1].root == [keys.from_pem(pem).spki_pem().decode()]
    org1_admin = (crypto / ORG.format(1) / "user/admin1/admin1.pem").read_bytes()
    sm2_key = write_key_member(tmp_path / "org7", "user", "sm2admin", "sm2").read_bytes()
    ca = make_org_ca(org.decode(), "ecdsa")[1].public_bytes(serialization.Encoding.PEM)
    for root, problem in (
        (ca, "not a PEM public key"),
        (org1_admin, "admin key of " + ORG.format(1)),
        (sm2_key, "holds an sm2 key"),
    ):
        with pytest.raises(RequestRefused, match=problem):
            trust_root_add(config, {"org_id": org, "root": root})

    app = ExecutionApp(Store(":memory:"), genesis)

    def admin(k: int) -> User:
        folder = crypto / ORG.format(k) / "user" / "admin1"
        return User(
            org_id=ORG.format(k),
            sign_key_bytes=(folder / "admin1.key").read_bytes(),
            auth_type="permissionedWithKey",
        )

    admins = [admin(1), admin(2)]
    freeze = {"certs": ca}
    app.check_cm(_request(admins[0], "CERT_MANAGE", "CERTS_FREEZE", freeze, admins))
    block = app.build_block(1, b"\x01" * 20, time.time())
    app.commit_block(block)
    (refused,) = _results(app, block)
    assert refused.code != 0 and "use PUBKEY_MANAGE" in refused.message
