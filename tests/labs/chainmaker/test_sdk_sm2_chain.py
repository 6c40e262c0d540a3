"""The official ChainMaker SDK, unmodified, against `academy chain up --orgs 4 --crypto sm2`: the
national-cryptography profile, SM2 keys and certificates with SM3, on four TBFT validators."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
import yaml
from chainmaker import ChainClient, User
from chainmaker.exceptions import AuthenticationError, EndorsementNotEnoughError, RequestError
from chainmaker.utils.evm_utils import calc_evm_method_params
from chainmaker.utils.gm import SM2PrivateKey
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from eth_utils import keccak

from labs.minichain.chainmaker import sm2
from labs.minichain.chainmaker.cryptogen import issue_member_cert, load_ca, make_org_ca, write_org
from tests.labs.chainmaker.sdkchain import (
    ORG,
    academy,
    admins,
    all_nodes_past,
    member_client,
    settled,
)
from tests.labs.chainmaker.test_sdk_chain import _create, _total
from tests.labs.chainmaker.test_sdk_chain import balance as balance  # noqa: F401 (fixture)

CALLER = "0xa166c92f4c8118905ad984919dc683a7bdb295c1"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    data = tmp_path_factory.mktemp("cm-sm2") / "chain"
    up = academy("chain", "up", "--data", str(data), "--orgs", "4", "--crypto", "sm2", "--detach")
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


def _invoke_request(cc, name, amount):
    method, params = calc_evm_method_params(
        "updateBalance", [{"uint256": str(amount)}, {"address": CALLER}]
    )
    return cc.get_tx_request(name, method, params)


def test_the_chain_and_its_sdk_config_speak_sm3(cc, chain) -> None:
    sdk_config = yaml.safe_load(Path(chain["chainmaker"]["sdk_config"]).read_text())
    assert sdk_config["chain_client"]["crypto"] == {"hash": "SM3"}
    nodes = sdk_config["chain_client"]["nodes"]
    assert len(nodes) == 4 and not any(n["enable_tls"] for n in nodes)  # the SDK has no GM TLS
    assert cc.get_chain_config().crypto.hash == "SM3"
    bc1 = yaml.safe_load((Path(chain["data"]) / "chainmaker" / "bc1.yml").read_text())
    assert bc1["crypto"] == {"hash": "SM3"}
    crypto = Path(chain["chainmaker"]["crypto_config"])
    for i in range(1, 5):
        for member in ("ca/ca", "user/admin1/admin1.sign", "node/consensus1/consensus1.tls"):
            cert = x509.load_pem_x509_certificate(
                (crypto / ORG.format(i) / f"{member}.crt").read_bytes()
            )
            assert cert.signature_algorithm_oid.dotted_string == sm2.SM2_WITH_SM3
    assert isinstance(cc.user.private_key, SM2PrivateKey)  # the SDK signs with its SM2 code


def test_create_with_three_sm2_admins_invoke_and_query(cc, chain, balance) -> None:
    created = _create(cc, chain, balance, "sm2balance")
    assert created.code == 0, created.message
    assert _total(cc, "sm2balance") == 7
    result = cc.send_tx_request(_invoke_request(cc, "sm2balance", 20), with_sync_result=True)
    assert result.code == 0, result.message
    settled(chain)
    assert result.contract_result.contract_event[0].topic == (
        keccak(b"Updated(address,uint256)").hex()
    )
    assert _total(cc, "sm2balance") == 27
    assert cc.get_contract_info("sm2balance").version == "1.0"


def test_one_sm2_admin_alone_cannot_create(cc, chain, balance) -> None:
    with pytest.raises(EndorsementNotEnoughError, match="not enough participants"):
        _create(cc, chain, balance, "sm2lonely", orgs=(4,))
    assert cc.get_contract_info("sm2lonely") is None


def test_a_forged_sm2_certificate_from_a_ca_outside_the_org_is_refused(cc, chain) -> None:
    ca_key, ca_cert = make_org_ca(ORG.format(1), "sm2")  # the org's very name, another CA
    key = sm2.generate()
    cert = issue_member_cert(
        ca_key, ca_cert, key.public_key(), ORG.format(1), "admin", "rogue.sign", tls=False
    )
    rogue = User(
        org_id=ORG.format(1),
        sign_key_bytes=sm2.private_pem(key),
        sign_cert_bytes=cert.public_bytes(serialization.Encoding.PEM),
    )
    own, cc.signer = cc.signer, rogue  # query_contract of SDK 3.0.7 signs as the client's signer
    method, params = calc_evm_method_params("total", [])
    try:
        with pytest.raises(AuthenticationError, match="unknown CA"):
            cc.query_contract("sm2balance", method, params)
        with pytest.raises(RequestError, match="unknown CA"):
            cc.send_tx_request(_invoke_request(cc, "sm2balance", 1))
    finally:
        cc.signer = own
    assert _total(cc, "sm2balance") >= 7  # the client's own signature still passes


def test_an_sm2_signature_over_sha256_is_refused(cc, chain) -> None:
    request = _invoke_request(cc, "sm2balance", 5)
    raw = request.payload.SerializeToString()
    key = cc.user.private_key
    r, s = key._sign(hashlib.sha256(raw).digest(), sm2.sm3(b"k").hex())  # SM2, wrong digest
    request.sender.signature = encode_dss_signature(r, s)
    with pytest.raises(RequestError, match="does not match") as refused:
        cc.send_tx_request(request)
    assert refused.value.err_code == 5
    before = _total(cc, "sm2balance")
    fresh = _invoke_request(cc, "sm2balance", 5)  # the same request, signed the SDK's way
    assert cc.send_tx_request(fresh, with_sync_result=True).code == 0
    settled(chain)
    assert _total(cc, "sm2balance") == before + 5


def test_a_frozen_sm2_certificate_is_refused(cc, chain) -> None:
    crypto = Path(chain["chainmaker"]["crypto_config"])
    user = crypto / ORG.format(2) / "user" / "client1"
    document = yaml.safe_load(Path(chain["chainmaker"]["sdk_config"]).read_text())
    document["chain_client"].update(
        org_id=ORG.format(2),
        user_sign_key_file_path=str(user / "client1.sign.key"),
        user_sign_crt_file_path=str(user / "client1.sign.crt"),
    )
    other = ChainClient.from_conf(document)
    method, params = calc_evm_method_params("total", [])
    assert other.query_contract("sm2balance", method, params).code == 0
    cert = (user / "client1.sign.crt").read_text()

    def manage(payload):
        endorsers = cc.create_endorsers(payload, admins(chain, (2,)))
        done = cc.send_cert_manage_request(payload, endorsers=endorsers, with_sync_result=True)
        settled(chain)
        return done

    assert manage(cc.create_cert_freeze_payload([cert])).code == 0
    with pytest.raises(AuthenticationError, match="frozen"):
        other.query_contract("sm2balance", method, params)
    assert manage(cc.create_cert_unfreeze_payload([cert])).code == 0
    assert other.query_contract("sm2balance", method, params).code == 0
    other.stop()


def test_pubkey_management_is_refused_on_a_certificate_chain(cc, chain) -> None:
    pem = sm2.public_pem(sm2.generate().public_key()).decode()
    payload = cc.create_pubkey_add_payload(pem, ORG.format(1), "client")
    with pytest.raises(AuthenticationError, match="serves permissionedWithKey chains"):
        cc.send_pubkey_manage_request(
            payload, endorsers=cc.create_endorsers(payload, admins(chain, (1, 2, 3)))
        )


def test_an_sm2_crl_revokes_and_a_forged_one_does_not(cc, chain) -> None:
    crypto = Path(chain["chainmaker"]["crypto_config"])
    user = crypto / ORG.format(3) / "user" / "client1"
    document = yaml.safe_load(Path(chain["chainmaker"]["sdk_config"]).read_text())
    document["chain_client"].update(
        org_id=ORG.format(3),
        user_sign_key_file_path=str(user / "client1.sign.key"),
        user_sign_crt_file_path=str(user / "client1.sign.crt"),
    )
    other = ChainClient.from_conf(document)
    method, params = calc_evm_method_params("total", [])
    assert other.query_contract("sm2balance", method, params).code == 0
    cert = x509.load_pem_x509_certificate((user / "client1.sign.crt").read_bytes())
    now = dt.datetime.now(dt.UTC)

    def crl_from(ca_key, ca_cert) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now)
            .next_update(now + dt.timedelta(hours=4))
            .add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(cert.serial_number)
                .revocation_date(now)
                .build()
            )
        )
        return sm2.revocation_list(builder, ca_key).public_bytes(serialization.Encoding.PEM)

    def revoke(crl: bytes):
        payload = cc.create_cert_revoke_payload(crl.decode())
        endorsers = cc.create_endorsers(payload, admins(chain, (3,)))
        done = cc.send_cert_manage_request(payload, endorsers=endorsers, with_sync_result=True)
        settled(chain)
        return done

    forged = revoke(crl_from(*make_org_ca(ORG.format(3), "sm2")))  # same name, another CA
    assert forged.code != 0 and "not signed by a trusted CA" in forged.message
    assert other.query_contract("sm2balance", method, params).code == 0
    assert revoke(crl_from(*load_ca(crypto / ORG.format(3)))).code == 0
    with pytest.raises(AuthenticationError, match="revoked"):
        other.query_contract("sm2balance", method, params)
    other.stop()


def test_sm2_admins_update_the_chain_config_and_trust_a_new_sm2_org(cc, chain, tmp_path) -> None:
    before = cc.get_chain_config()
    payload = cc.create_chain_config_block_update_payload(block_size=17)
    with pytest.raises(EndorsementNotEnoughError):  # MAJORITY holds on SM2 endorsements too
        cc.send_chain_config_update_request(
            payload, cc.create_endorsers(payload, admins(chain, (1,)))
        )
    endorsers = cc.create_endorsers(payload, admins(chain, (1, 2, 3)))
    done = cc.send_chain_config_update_request(payload, endorsers, with_sync_result=True)
    assert done.code == 0, done.message
    settled(chain)
    height = cc.get_block_height_by_tx_id(payload.tx_id)
    all_nodes_past(chain, height)
    after = cc.get_chain_config()
    assert (after.sequence, after.block.block_size) == (before.sequence + 1, 17)
    assert after.crypto.hash == "SM3"  # an update keeps the profile
    assert (
        cc.get_chain_config_by_block_height(height - 1).block.block_size == before.block.block_size
    )

    org = ORG.format(7)
    write_org(tmp_path / "ecdsa", org, 1, "ecdsa")
    wrong = cc.create_chain_config_trust_root_add_payload(
        org, [(tmp_path / "ecdsa" / org / "ca/ca.crt").read_text()]
    )
    refused = cc.send_chain_config_update_request(
        wrong, cc.create_endorsers(wrong, admins(chain, (1, 2, 3))), with_sync_result=True
    )
    assert refused.code != 0 and "holds an ecdsa key" in refused.message
    write_org(tmp_path / "sm2", org, 1, "sm2")
    outsider = member_client(chain, org, "client1", crypto=tmp_path / "sm2")
    with pytest.raises(AuthenticationError, match="not in the trust roots"):
        outsider.get_current_block_height()
    added = cc.create_chain_config_trust_root_add_payload(
        org, [(tmp_path / "sm2" / org / "ca/ca.crt").read_text()]
    )
    endorsers = cc.create_endorsers(added, admins(chain, (1, 2, 3)))
    done = cc.send_chain_config_update_request(added, endorsers, with_sync_result=True)
    assert done.code == 0, done.message
    settled(chain)
    all_nodes_past(chain, cc.get_block_height_by_tx_id(added.tx_id))
    assert outsider.get_current_block_height() > 0  # its SM2 member signs in now
    outsider.stop()
