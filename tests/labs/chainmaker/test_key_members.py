"""Members known by their keys (permissionedWithKey): who the verifier takes for an admin, and
the member types each identity mode refuses, for ECDSA and SM2 keys alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from chainmaker.keys import AuthType
from chainmaker.user import User
from chainmaker.utils.gm import SM2PrivateKey

from labs.minichain.chainmaker import keys, pb
from labs.minichain.chainmaker.auth import AuthError, Verifier
from labs.minichain.chainmaker.chainconfig import KEY_MODE, ChainMakerConfig, TrustRoot
from labs.minichain.chainmaker.cryptogen import org_id, write_key_org, write_org


@pytest.fixture(scope="module", params=["ecdsa", "sm2"])
def orgs(request, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp(f"pwk-{request.param}")
    for k in (1, 2):
        write_key_org(root, org_id(k), 1, request.param)
    return root


def _verifier(orgs: Path) -> Verifier:
    return Verifier(
        ChainMakerConfig(
            auth_type=KEY_MODE,
            trust_roots=[
                TrustRoot(
                    org_id=org_id(k),
                    root=[(orgs / org_id(k) / "user" / "admin1" / "admin1.pem").read_text()],
                )
                for k in (1, 2)
            ],
        )
    )


def _key_user(orgs: Path, k: int, name: str, org: str | None = None) -> User:
    key = orgs / org_id(k) / "user" / name / f"{name}.key"
    return User(
        org_id=org or org_id(k),
        sign_key_bytes=key.read_bytes(),
        auth_type=AuthType.PermissionedWithKey,
    )


def _request(user: User):
    payload = pb.Payload(chain_id="chain1", tx_id="a1", contract_name="X", method="m")
    raw = payload.SerializeToString()
    return pb.TxRequest(payload=payload, sender=user.sign(raw)), raw


def test_admins_are_the_trust_roots_and_others_wait_for_the_registry(orgs: Path) -> None:
    verifier = _verifier(orgs)
    request, raw = _request(_key_user(orgs, 1, "admin1"))
    admin = verifier.sender(request, raw)
    assert (admin.org_id, admin.role, admin.cert) == (org_id(1), "admin", None)
    request, raw = _request(_key_user(orgs, 1, "client1"))
    assert verifier.sender(request, raw).role == ""  # the executor's registry decides
    # org1's admin key claiming org2 is no admin there
    request, raw = _request(_key_user(orgs, 1, "admin1", org=org_id(2)))
    assert verifier.sender(request, raw).role == ""
    request, raw = _request(_key_user(orgs, 1, "admin1", org="wx-org9.chainmaker.org"))
    with pytest.raises(AuthError, match="not in the trust roots"):
        verifier.sender(request, raw)


def test_a_tampered_payload_fails_the_key_signature(orgs: Path) -> None:
    request, raw = _request(_key_user(orgs, 1, "admin1"))
    with pytest.raises(AuthError, match="does not match"):
        _verifier(orgs).sender(request, raw + b"\x00")


def test_each_identity_mode_refuses_the_other_member_type(orgs: Path, tmp_path: Path) -> None:
    cert_orgs = tmp_path / "cert"
    write_org(cert_orgs, org_id(1), 1)
    folder = cert_orgs / org_id(1) / "user" / "client1"
    cert_user = User(
        org_id=org_id(1),
        sign_key_bytes=(folder / "client1.sign.key").read_bytes(),
        sign_cert_bytes=(folder / "client1.sign.crt").read_bytes(),
    )
    request, raw = _request(cert_user)
    with pytest.raises(AuthError, match="member type PUBLIC_KEY"):
        _verifier(orgs).sender(request, raw)
    cert_chain = Verifier(
        ChainMakerConfig(
            trust_roots=[
                TrustRoot(
                    org_id=org_id(1), root=[(cert_orgs / org_id(1) / "ca" / "ca.crt").read_text()]
                )
            ]
        )
    )
    request, raw = _request(_key_user(orgs, 1, "admin1"))
    with pytest.raises(AuthError, match="member type CERT"):
        cert_chain.sender(request, raw)


def test_a_key_is_named_by_its_point_whatever_its_pem(orgs: Path) -> None:
    pem = (orgs / org_id(1) / "user" / "client1" / "client1.pem").read_bytes()
    key = keys.from_pem(pem)
    body = b"".join(pem.strip().splitlines()[1:-1])
    rewrapped = b"-----BEGIN PUBLIC KEY-----\n" + body + b"\n-----END PUBLIC KEY-----\n"
    assert keys.from_pem(rewrapped).id == key.id
    if key.kind == keys.SM2:  # the SDK writes an SM2 key's PEM with its own encoder
        sdk_key = SM2PrivateKey.from_pem(
            (orgs / org_id(1) / "user" / "client1" / "client1.key").read_bytes()
        )
        assert keys.from_pem(sdk_key.public_key().to_pem()).id == key.id
    for junk in (b"", b"-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----", pem[:-40]):
        with pytest.raises(ValueError):
            keys.from_pem(junk)
