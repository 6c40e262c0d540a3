"""The official ChainMaker SDK, unmodified, against a permissionedWithKey chain
(`academy chain up --orgs 4 --identity permissionedWithKey`): members are public keys, each org's
admin key is its trust root, and only keys an admin of their org registered may send requests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from chainmaker import ChainClient
from chainmaker.exceptions import AuthenticationError, EndorsementNotEnoughError, RequestError
from chainmaker.keys import RuntimeType
from chainmaker.utils.evm_utils import calc_evm_method_params
from eth_utils import keccak

from labs.minichain.chainmaker import keys
from labs.minichain.chainmaker.cryptogen import write_key_member
from tests.labs.chainmaker.sdkchain import ORG, academy, all_nodes_past, settled
from tests.labs.chainmaker.test_sdk_chain import _total
from tests.labs.chainmaker.test_sdk_chain import balance as balance  # noqa: F401 (fixture)

PWK = "permissionedWithKey"


@pytest.fixture(scope="module", params=["ecdsa", "sm2"])
def chain(request, tmp_path_factory):
    """One chain per crypto profile: every test here runs on both."""
    data = tmp_path_factory.mktemp(f"cm-pwk-{request.param}") / "chain"
    args = ["--orgs", "4", "--identity", PWK, "--crypto", request.param, "--detach"]
    up = academy("chain", "up", "--data", str(data), *args)
    try:
        assert up.returncode == 0, up.stderr
        yield json.loads(up.stdout) | {"profile": request.param}
    finally:
        academy("chain", "down", "--data", str(data))


@pytest.fixture(scope="module")
def cc(chain):
    """The chain's own sdk_config.yml: org1's admin, as ChainMaker's pwk examples sign."""
    client = ChainClient.from_conf(chain["chainmaker"]["sdk_config"])
    yield client
    client.stop()


def _key_file(chain, org: int, user: str) -> Path:
    return (
        Path(chain["chainmaker"]["crypto_config"]) / ORG.format(org) / "user" / user / f"{user}.key"
    )


def _client(chain, org: int, user: str, key_file: Path | None = None) -> ChainClient:
    document = yaml.safe_load(Path(chain["chainmaker"]["sdk_config"]).read_text())
    document["chain_client"].update(
        org_id=ORG.format(org), user_sign_key_file_path=str(key_file or _key_file(chain, org, user))
    )
    return ChainClient.from_conf(document)


def _signers(chain, members):
    return [
        {
            "org_id": ORG.format(org),
            "user_sign_key_file_path": str(_key_file(chain, org, user)),
            "auth_type": PWK,
        }
        for org, user in members
    ]


def _admins(chain, orgs):
    return _signers(chain, [(k, "admin1") for k in orgs])


@pytest.fixture(scope="module")
def deployed(cc, chain, balance) -> str:
    payload = cc.create_contract_create_payload(
        contract_name="pwkbalance",
        version="1.0",
        byte_code_path=str(balance),
        runtime_type=RuntimeType.EVM,
        params=[{"uint256": "7"}],
    )
    endorsers = cc.create_endorsers(payload, _admins(chain, (1, 2, 3)))
    created = cc.send_contract_manage_request(payload, endorsers=endorsers, with_sync_result=True)
    assert created.code == 0, created.message
    settled(chain)
    return "pwkbalance"


def _manage(cc, payload, endorsers):
    return cc.send_pubkey_manage_request(payload, endorsers=endorsers, with_sync_result=True)


def _invoke(client, name, amount):
    method, params = calc_evm_method_params(
        "updateBalance", [{"uint256": str(amount)}, {"address": "0x" + "11" * 20}]
    )
    return client.send_tx_request(
        client.get_tx_request(name, method, params), with_sync_result=True
    )


def test_members_are_key_pairs_and_admin_keys_are_the_trust_roots(cc, chain) -> None:
    crypto = Path(chain["chainmaker"]["crypto_config"])
    config = cc.get_chain_config()
    assert config.auth_type == PWK
    for i in range(1, 5):
        org = crypto / ORG.format(i)
        assert not (org / "ca").exists()
        admin_pem = (org / "user" / "admin1" / "admin1.pem").read_bytes()
        root = next(t for t in config.trust_roots if t.org_id == ORG.format(i))
        assert [keys.from_pem(r.encode()).id for r in root.root] == [keys.from_pem(admin_pem).id]
        for member in ("user/client1/client1", "node/consensus1/consensus1"):
            assert (org / f"{member}.key").exists() and (org / f"{member}.pem").exists()
    sdk = yaml.safe_load(Path(chain["chainmaker"]["sdk_config"]).read_text())["chain_client"]
    assert sdk["auth_type"] == PWK and sdk["user_sign_key_file_path"].endswith("admin1.key")
    assert "user_sign_crt_file_path" not in sdk
    profile = chain["profile"]
    assert config.crypto.hash == {"ecdsa": "SHA256", "sm2": "SM3"}[profile]
    assert sdk["crypto"]["hash"] == config.crypto.hash
    assert keys.from_pem(cc.user.public_bytes).kind == profile
    assert all(
        keys.from_pem(r.encode()).kind == profile for t in config.trust_roots for r in t.root
    )


def test_admins_create_invoke_and_query(cc, chain, deployed) -> None:
    assert _total(cc, deployed) == 7
    result = _invoke(cc, deployed, 5)
    assert result.code == 0, result.message
    assert result.contract_result.contract_event[0].topic == (
        keccak(b"Updated(address,uint256)").hex()
    )
    assert _total(cc, deployed) == 12


def test_an_unregistered_key_is_refused_until_its_admin_registers_it(cc, chain, deployed) -> None:
    client = _client(chain, 2, "client1")
    method, params = calc_evm_method_params("total", [])
    with pytest.raises(AuthenticationError, match="not registered"):
        client.query_contract(deployed, method, params)
    with pytest.raises(RequestError, match="not registered"):
        client.send_tx_request(client.get_tx_request(deployed, method, params))

    pem = (_key_file(chain, 2, "client1").with_suffix(".pem")).read_text()
    added = _manage(
        cc,
        payload := cc.create_pubkey_add_payload(pem, ORG.format(2), "client"),
        cc.create_endorsers(payload, _admins(chain, (2,))),
    )
    assert added.code == 0, added.message
    assert client.query_contract(deployed, method, params).code == 0
    assert _invoke(client, deployed, 1).code == 0
    with pytest.raises(AuthenticationError, match="not registered"):  # in its own org only
        _client(chain, 3, "client1", _key_file(chain, 2, "client1")).query_contract(
            deployed, method, params
        )

    deleted = _manage(
        cc,
        payload := cc.create_pubkey_delete_payload(pem, ORG.format(2)),
        cc.create_endorsers(payload, _admins(chain, (2,))),
    )
    assert deleted.code == 0, deleted.message
    with pytest.raises(AuthenticationError, match="not registered"):
        client.query_contract(deployed, method, params)
    client.stop()


def test_a_member_cannot_register_another_member(cc, chain, deployed, tmp_path) -> None:
    pem = (_key_file(chain, 1, "client1").with_suffix(".pem")).read_text()
    payload = cc.create_pubkey_add_payload(pem, ORG.format(1), "client")
    assert _manage(cc, payload, cc.create_endorsers(payload, _admins(chain, (1,)))).code == 0
    member = _client(chain, 1, "client1")
    stranger = write_key_member(tmp_path, "user", "client2").read_text()
    payload = member.create_pubkey_add_payload(stranger, ORG.format(1), "client")
    with pytest.raises(EndorsementNotEnoughError, match="not enough participants"):
        _manage(
            member, payload, member.create_endorsers(payload, _signers(chain, [(1, "client1")]))
        )
    # nor may another org's admins register keys into org1 (SELF is the key's org), even
    # when that admin sends the request itself; nor may anyone register an admin
    org2_admin = _client(chain, 2, "admin1")
    payload = org2_admin.create_pubkey_add_payload(stranger, ORG.format(1), "client")
    with pytest.raises(EndorsementNotEnoughError):
        _manage(
            org2_admin, payload, org2_admin.create_endorsers(payload, _admins(chain, (2, 3, 4)))
        )
    org2_admin.stop()
    payload = cc.create_pubkey_add_payload(stranger, ORG.format(1), "admin")
    refused = _manage(cc, payload, cc.create_endorsers(payload, _admins(chain, (1,))))
    assert refused.code != 0 and "cannot be registered" in refused.message
    stranger_key = tmp_path / "user" / "client2" / "client2.key"
    method, params = calc_evm_method_params("total", [])
    with pytest.raises(AuthenticationError, match="not registered"):
        _client(chain, 1, "client2", stranger_key).query_contract(deployed, method, params)
    member.stop()


def test_a_forged_admin_key_does_not_count_as_an_endorsement(cc, chain, balance, tmp_path) -> None:
    forged = write_key_member(tmp_path, "user", "admin1").with_suffix(".key")
    payload = cc.create_contract_create_payload(
        contract_name="pwkforged",
        version="1.0",
        byte_code_path=str(balance),
        runtime_type=RuntimeType.EVM,
        params=[{"uint256": "7"}],
    )
    endorsers = cc.create_endorsers(
        payload,
        _admins(chain, (1, 2))
        + [{"org_id": ORG.format(3), "user_sign_key_file_path": str(forged), "auth_type": PWK}],
    )
    with pytest.raises(EndorsementNotEnoughError):
        cc.send_contract_manage_request(payload, endorsers=endorsers, with_sync_result=True)
    assert cc.get_contract_info("pwkforged") is None


def test_labs_client_and_the_hand_over_serve_key_members(chain, deployed, monkeypatch, tmp_path):
    from labs import client as labs_client
    from labs.minichain.chainmaker.handover import hand_over

    for name in [k for k in os.environ if k.startswith("ACADEMY_")]:
        monkeypatch.delenv(name)
    handed = hand_over(Path(chain["chainmaker"]["sdk_config"]), tmp_path, "pwk")
    copied = sorted(p.relative_to(handed.parent).as_posix() for p in handed.parent.rglob("*"))
    assert not [p for p in copied if "/node/" in p or "/ca" in p], copied
    assert f"crypto-config/{ORG.format(3)}/user/admin1/admin1.key" in copied
    monkeypatch.setenv("ACADEMY_CHAINMAKER_SDK_CONFIG", str(handed))
    admin = labs_client.chainmaker_client(org=3, user="admin1")
    assert admin.user.org_id == ORG.format(3)
    assert admin.user.sign_key_bytes == _key_file(chain, 3, "admin1").read_bytes()
    method, params = calc_evm_method_params("total", [])
    assert admin.query_contract(deployed, method, params).code == 0
    admin.stop()


def test_junk_keys_and_unknown_orgs_are_refused_at_the_door(cc, chain, deployed) -> None:
    pem = (_key_file(chain, 1, "client1").with_suffix(".pem")).read_text()
    cert_like = pem.replace("PUBLIC KEY", "CERTIFICATE")
    for key, org in (("not a key", ORG.format(1)), (cert_like, ORG.format(1)), (pem, "wx-org9")):
        payload = cc.create_pubkey_add_payload(key, org, "client")
        with pytest.raises(AuthenticationError):
            _manage(cc, payload, cc.create_endorsers(payload, _admins(chain, (1,))))
    payload = cc.create_pubkey_add_payload(pem, ORG.format(1), "client")
    payload.method = "PUBKEY_QUERY_ALL"
    with pytest.raises(AuthenticationError, match="not supported"):
        _manage(cc, payload, cc.create_endorsers(payload, _admins(chain, (1,))))
    assert cc.get_chainmaker_server_version() == "v3.0.0"  # and the node lives on


def test_a_key_belongs_to_one_org_and_admin_keys_stay_admins(cc, chain) -> None:
    org3_client = (_key_file(chain, 3, "client1").with_suffix(".pem")).read_text()
    org1_admin = (_key_file(chain, 1, "admin1").with_suffix(".pem")).read_text()
    org4_admin = _client(chain, 4, "admin1")

    def add(client, pem, org, admins):
        payload = client.create_pubkey_add_payload(pem, ORG.format(org), "client")
        return _manage(client, payload, client.create_endorsers(payload, _admins(chain, admins)))

    assert add(cc, org3_client, 3, (3,)).code == 0
    taken = add(org4_admin, org3_client, 4, (4,))
    assert taken.code != 0 and "registered in another org" in taken.message
    admin = add(org4_admin, org1_admin, 4, (4,))
    assert admin.code != 0 and "is an admin of " + ORG.format(1) in admin.message
    payload = cc.create_pubkey_delete_payload(org3_client, ORG.format(3))
    assert _manage(cc, payload, cc.create_endorsers(payload, _admins(chain, (3,)))).code == 0
    assert add(org4_admin, org3_client, 4, (4,)).code == 0  # free again, so org4 may take it
    org4_admin.stop()


def _config_update(cc, chain, payload, orgs=(1, 2, 3)):
    endorsers = cc.create_endorsers(payload, _admins(chain, orgs))
    done = cc.send_chain_config_update_request(payload, endorsers, with_sync_result=True)
    settled(chain)
    return done


def test_key_admins_update_the_config_and_add_an_org_by_its_admin_key(cc, chain, tmp_path):
    before = cc.get_chain_config()
    payload = cc.create_chain_config_block_update_payload(block_size=19)
    with pytest.raises(EndorsementNotEnoughError):
        cc.send_chain_config_update_request(
            payload, cc.create_endorsers(payload, _admins(chain, (1,)))
        )
    assert _config_update(cc, chain, payload).code == 0
    all_nodes_past(chain, cc.get_block_height_by_tx_id(payload.tx_id))
    after = cc.get_chain_config()
    assert (after.sequence, after.block.block_size) == (before.sequence + 1, 19)

    org = ORG.format(6)
    pem = write_key_member(tmp_path / org, "user", "admin1", chain["profile"]).read_text()
    newcomer = _client(chain, 6, "admin1", key_file=tmp_path / org / "user/admin1/admin1.key")
    with pytest.raises(AuthenticationError, match="not in the trust roots"):
        newcomer.get_current_block_height()
    org2_admin = (_key_file(chain, 2, "admin1").with_suffix(".pem")).read_text()
    for root, why in (
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a PEM public key"),
        (org2_admin, "is an admin key of " + ORG.format(2)),
    ):
        refused = _config_update(
            cc, chain, cc.create_chain_config_trust_root_add_payload(org, [root])
        )
        assert refused.code != 0 and why in refused.message
    added = cc.create_chain_config_trust_root_add_payload(org, [pem])
    assert _config_update(cc, chain, added).code == 0
    all_nodes_past(chain, cc.get_block_height_by_tx_id(added.tx_id))
    assert org in [t.org_id for t in cc.get_chain_config().trust_roots]
    assert newcomer.get_current_block_height() > 0  # its admin key is a trust root now
    newcomer.stop()
