"""The SM2/SM3 profile without a chain: crypto-config's SM2 files, checked by the SDK that signs
with them, by the chain's verifier and by OpenSSL's own SM2, and the signatures it must refuse."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml
from chainmaker.user import User
from chainmaker.utils.gm import SM2PrivateKey
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from labs.minichain.chainmaker import keys, pb, sm2
from labs.minichain.chainmaker.auth import AuthError, Verifier
from labs.minichain.chainmaker.chainconfig import ChainMakerConfig, TrustRoot
from labs.minichain.chainmaker.cryptogen import (
    issue_member_cert,
    make_org_ca,
    org_id,
    write_org,
)
from tests.labs.chainmaker.sdkchain import academy

DEFAULT_ID = "1234567812345678"


@pytest.fixture(scope="module")
def orgs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sm2")
    for k in (1, 2):
        write_org(root, org_id(k), 1, "sm2")
    return root


def _member(orgs: Path, k: int, name: str = "client1") -> tuple[Path, Path]:
    folder = orgs / org_id(k) / "user" / name
    return folder / f"{name}.sign.key", folder / f"{name}.sign.crt"


def _verifier(orgs: Path) -> Verifier:
    return Verifier(
        ChainMakerConfig(
            crypto={"hash": "SM3"},
            trust_roots=[
                TrustRoot(org_id=org_id(k), root=[(orgs / org_id(k) / "ca" / "ca.crt").read_text()])
                for k in (1, 2)
            ],
        )
    )


def _request(user: User, signature: bytes | None = None):
    payload = pb.Payload(chain_id="chain1", tx_id="a1", contract_name="X", method="m")
    raw = payload.SerializeToString()
    entry = user.sign(raw)
    if signature is not None:
        entry.signature = signature
    return pb.TxRequest(payload=payload, sender=entry), raw


def _user(key: bytes, cert: bytes, org: str = org_id(1)) -> User:
    return User(org_id=org, sign_key_bytes=key, sign_cert_bytes=cert)


def test_crypto_config_is_sm2_throughout(orgs: Path) -> None:
    for member in ("user/admin1/admin1", "user/client1/client1", "node/consensus1/consensus1"):
        for use in ("sign", "tls"):
            cert = x509.load_pem_x509_certificate(
                (orgs / org_id(1) / f"{member}.{use}.crt").read_bytes()
            )
            assert cert.signature_algorithm_oid.dotted_string == sm2.SM2_WITH_SM3
            assert keys.from_certificate(cert).kind == keys.SM2
    ca = x509.load_pem_x509_certificate((orgs / org_id(1) / "ca" / "ca.crt").read_bytes())
    assert keys.issued_by(ca, ca)  # self-signed with SM2-with-SM3
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert ski == sm2.sm3(b"\x04" + keys.from_certificate(ca).point)  # ski_hash: sm3
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski  # the last member checked names its CA's key
    with pytest.raises(x509.ExtensionNotFound):  # a root names no authority
        ca.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)


def test_openssl_verifies_the_certificates_with_the_default_user_id(orgs: Path) -> None:
    """An independent SM2: OpenSSL accepts the chain under ID 1234567812345678 and no other."""
    ca = orgs / org_id(1) / "ca" / "ca.crt"
    _, cert = _member(orgs, 1)

    def verify(distid: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["openssl", "verify", "-vfyopt", f"distid:{distid}", "-CAfile", str(ca), str(cert)],
            capture_output=True,
            text=True,
            check=False,
        )

    assert verify(DEFAULT_ID).returncode == 0, verify(DEFAULT_ID).stderr
    assert verify("8765432187654321").returncode != 0
    other_ca = orgs / org_id(2) / "ca" / "ca.crt"
    crossed = subprocess.run(
        ["openssl", "verify", "-vfyopt", f"distid:{DEFAULT_ID}", "-CAfile", str(other_ca)]
        + [str(cert)],
        capture_output=True,
        check=False,
    )
    assert crossed.returncode != 0  # org2's CA did not issue org1's member


def test_the_sdk_reads_the_keys_and_its_signatures_verify_here_and_in_openssl(
    orgs: Path, tmp_path: Path
) -> None:
    key_file, cert_file = _member(orgs, 1)
    sdk_key = SM2PrivateKey.from_pem(key_file.read_bytes())
    member = keys.from_certificate(x509.load_pem_x509_certificate(cert_file.read_bytes()))
    # the SDK reads the public point out of the key file at fixed offsets: it must be this one
    assert bytes.fromhex(sdk_key.public_key().x + sdk_key.public_key().y) == member.point
    user = _user(key_file.read_bytes(), cert_file.read_bytes())
    request, raw = _request(user)
    verifier = _verifier(orgs)
    signer = verifier.sender(request, raw)
    assert (signer.org_id, signer.role, signer.key.kind) == (org_id(1), "client", keys.SM2)

    (tmp_path / "data").write_bytes(raw)
    (tmp_path / "sig").write_bytes(bytes(request.sender.signature))
    (tmp_path / "pub.pem").write_bytes(member.spki_pem())
    checked = subprocess.run(
        ["openssl", "dgst", "-sm3", "-verify", str(tmp_path / "pub.pem"), "-sigopt"]
        + [f"distid:{DEFAULT_ID}", "-signature", str(tmp_path / "sig"), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0 and "Verified OK" in checked.stdout, checked.stderr


def test_an_sm2_signature_over_another_digest_is_refused(orgs: Path) -> None:
    key_file, cert_file = _member(orgs, 1)
    sdk_key = SM2PrivateKey.from_pem(key_file.read_bytes())
    user = _user(key_file.read_bytes(), cert_file.read_bytes())
    verifier = _verifier(orgs)
    _, raw = _request(user)

    def refused(signature: bytes) -> None:
        request, raw_again = _request(user, signature)
        assert raw_again == raw
        with pytest.raises(AuthError, match="does not match"):
            verifier.sender(request, raw)

    # SM2 over SHA-256 of the payload, over SM3 without the signer's Z, and with another user ID
    r, s = sdk_key._sign(hashlib.sha256(raw).digest(), "1" * 64)
    refused(encode_dss_signature(r, s))
    r, s = sdk_key._sign(sm2.sm3(raw), "2" * 64)
    refused(encode_dss_signature(r, s))
    refused(sdk_key.sign_with_sm3(raw, uid=b"8765432187654321").dump())
    # the right digest does verify, so the refusals above are about the digest alone
    request, _ = _request(user, sdk_key.sign_with_sm3(raw).dump())
    assert verifier.sender(request, raw).role == "client"


def test_an_sm2_certificate_from_a_ca_outside_the_org_is_refused(orgs: Path) -> None:
    ca_key, ca_cert = make_org_ca(org_id(1), "sm2")  # the org's very name, another CA
    key = sm2.generate()
    cert = issue_member_cert(
        ca_key, ca_cert, key.public_key(), org_id(1), "admin", "rogue.sign", tls=False
    )
    rogue = _user(sm2.private_pem(key), cert.public_bytes(serialization.Encoding.PEM))
    request, raw = _request(rogue)
    with pytest.raises(AuthError, match="unknown CA"):
        _verifier(orgs).sender(request, raw)


def test_an_ecdsa_member_cannot_sign_into_an_sm2_org(orgs: Path, tmp_path: Path) -> None:
    ecdsa_orgs = tmp_path / "ecdsa"
    write_org(ecdsa_orgs, org_id(1), 1, "ecdsa")
    key_file, cert_file = _member(ecdsa_orgs, 1)
    request, raw = _request(_user(key_file.read_bytes(), cert_file.read_bytes()))
    with pytest.raises(AuthError, match="unknown CA"):
        _verifier(orgs).sender(request, raw)


def test_chain_init_takes_the_profile_and_names_the_choices(tmp_path: Path) -> None:
    bad = academy("chain", "init", "--data", str(tmp_path / "bad"), "--crypto", "rsa")
    assert bad.returncode == 2 and "use ecdsa" in bad.stderr and "sm2" in bad.stderr
    assert not (tmp_path / "bad" / "genesis.json").exists()
    data = tmp_path / "sm2"
    made = academy("chain", "init", "--data", str(data), "--nodes", "2", "--crypto", "sm2")
    assert made.returncode == 0, made.stderr
    bc1 = yaml.safe_load((data / "chainmaker" / "bc1.yml").read_text())
    sdk = yaml.safe_load((data / "chainmaker" / "sdk_config.yml").read_text())["chain_client"]
    assert bc1["crypto"] == {"hash": "SM3"} and sdk["crypto"] == {"hash": "SM3"}
    root = Path(bc1["trust_roots"][0]["root"][0])
    assert sm2.is_sm2_cert(x509.load_pem_x509_certificate(root.read_bytes()))
