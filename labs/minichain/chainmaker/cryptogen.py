"""Orgs, CAs and member certificates in chainmaker-cryptogen's layout and names.

::

    crypto-config/wx-org1.chainmaker.org/ca/ca.key, ca.crt
    crypto-config/wx-org1.chainmaker.org/node/consensus1/consensus1.{sign,tls}.{key,crt}
    crypto-config/wx-org1.chainmaker.org/node/common1/common1.{sign,tls}.{key,crt}
    crypto-config/wx-org1.chainmaker.org/user/admin1/admin1.{sign,tls}.{key,crt}
    crypto-config/wx-org1.chainmaker.org/user/client1/client1.{sign,tls}.{key,crt}

The same layout as ChainMaker's own tool, so its docs and the SDK's examples apply unchanged. A
member's role is the certificate's OU (admin, client, consensus, common), its org the O, as
ChainMaker reads them. Two crypto profiles, as the tool's ``pk_algo``: ``ecdsa`` (P-256 keys,
certificates signed with SHA-256, ChainMaker's default) and ``sm2`` (SM2 keys, certificates signed
with SM2-with-SM3, :mod:`.sm2`). TLS certificates name ``chainmaker.org``, ``localhost`` and
``127.0.0.1``, the host names the SDK's examples connect with.

permissionedWithKey has no CAs and no certificates: each member is a key pair, ``name.key`` and
``name.pem`` (its public key), in the same folders (``user/admin1/admin1.pem`` is the org's trust
root), as chainmaker-cryptogen's pwk layout has them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import sm2

CERT_DAYS = 3650
DOMAIN = "chainmaker.org"
TLS_NAMES = ("chainmaker.org", "localhost")
ROLES = ("admin", "client", "consensus", "common")
PROFILES = ("ecdsa", "sm2")


def org_id(index: int) -> str:
    """ChainMaker's name for org ``index`` (1-based): ``wx-org1.chainmaker.org``."""
    return f"wx-org{index}.{DOMAIN}"


@dataclass(frozen=True)
class MemberFiles:
    """Where one member's four files are."""

    org_id: str
    name: str
    role: str
    folder: Path

    def path(self, kind: str) -> Path:
        """``kind`` is ``sign.key``, ``sign.crt``, ``tls.key`` or ``tls.crt``."""
        return self.folder / f"{self.name}.{kind}"


def _new_key(profile: str) -> Any:
    if profile not in PROFILES:
        raise ValueError(f"crypto profile {profile!r} is unknown: use one of {', '.join(PROFILES)}")
    return sm2.generate() if profile == "sm2" else ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: Any) -> bytes:
    if isinstance(key, sm2.PrivateKey):
        return sm2.private_pem(key)
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _pem_public(key: Any) -> bytes:
    if isinstance(key, sm2.PrivateKey):
        return sm2.public_pem(key.public_key())
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _finish(
    builder: x509.CertificateBuilder, public_key: Any, signing_key: Any, self_signed: bool = False
) -> x509.Certificate:
    """Key identifiers, validity, signature: ECDSA with SHA-256, or SM2 with SM3."""
    if isinstance(signing_key, sm2.PrivateKey):
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier(sm2.ski(public_key)), critical=False
        )
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier(sm2.ski(signing_key.public_key()), None, None),
                critical=False,
            )
        return sm2.issue(builder, public_key, signing_key, CERT_DAYS)
    now = dt.datetime.now(dt.UTC)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
    )
    if not self_signed:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
    return (
        builder.public_key(public_key)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .sign(signing_key, hashes.SHA256())
    )


def _name(org: str, ou: str, cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Beijing"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Beijing"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chmod(path, 0o600)


def make_org_ca(org: str, profile: str = "ecdsa") -> tuple[Any, x509.Certificate]:
    key = _new_key(profile)
    name = _name(org, "root-cert", f"ca.{org}")
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return key, _finish(builder, key.public_key(), key, self_signed=True)


def issue_member_cert(
    ca_key: Any,
    ca_cert: x509.Certificate,
    public_key: Any,
    org: str,
    role: str,
    common_name: str,
    tls: bool,
) -> x509.Certificate:
    """A sign or TLS certificate for one member, as chainmaker-cryptogen issues it."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(org, role, common_name))
        .issuer_name(ca_cert.subject)
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=not tls,
                key_encipherment=tls,
                data_encipherment=False,
                key_agreement=tls,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if tls:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        ).add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in (*TLS_NAMES, common_name)]
                + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return _finish(builder, public_key, ca_key)


def load_ca(org_dir: Path) -> tuple[Any, x509.Certificate]:
    pem = (org_dir / "ca" / "ca.key").read_bytes()
    try:
        key: Any = serialization.load_pem_private_key(pem, None)
    except UnsupportedAlgorithm:  # a curve cryptography lacks: SM2
        key = sm2.load_private(pem)
    if not isinstance(key, ec.EllipticCurvePrivateKey | sm2.PrivateKey):
        raise ValueError(f"{org_dir}/ca/ca.key is neither an ECDSA nor an SM2 key")
    cert = x509.load_pem_x509_certificate((org_dir / "ca" / "ca.crt").read_bytes())
    return key, cert


def write_member(org_dir: Path, org: str, kind: str, name: str, role: str) -> MemberFiles:
    """Issue ``name``'s sign and TLS key pairs from the org's CA into ``org_dir/kind/name/``,
    with keys of the CA's own algorithm."""
    ca_key, ca_cert = load_ca(org_dir)
    profile = "sm2" if isinstance(ca_key, sm2.PrivateKey) else "ecdsa"
    folder = org_dir / kind / name
    folder.mkdir(parents=True, exist_ok=True)
    member = MemberFiles(org, name, role, folder)
    for use in ("sign", "tls"):
        key = _new_key(profile)
        cert = issue_member_cert(
            ca_key, ca_cert, key.public_key(), org, role, f"{name}.{use}.{org}", tls=use == "tls"
        )
        _write_private(member.path(f"{use}.key"), _pem_key(key))
        member.path(f"{use}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return member


def write_org(root: Path, org: str, consensus_nodes: int, profile: str = "ecdsa") -> Path:
    """One org's CA and its members: ``consensus_nodes`` consensus nodes, common1, admin1, client1."""
    org_dir = root / org
    (org_dir / "ca").mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = make_org_ca(org, profile)
    _write_private(org_dir / "ca" / "ca.key", _pem_key(ca_key))
    (org_dir / "ca" / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for j in range(1, consensus_nodes + 1):
        write_member(org_dir, org, "node", f"consensus{j}", "consensus")
    write_member(org_dir, org, "node", "common1", "common")
    write_member(org_dir, org, "user", "admin1", "admin")
    write_member(org_dir, org, "user", "client1", "client")
    return org_dir


def write_key_member(org_dir: Path, kind: str, name: str, profile: str = "ecdsa") -> Path:
    """A permissionedWithKey member: ``name.key`` and its public key ``name.pem``."""
    folder = org_dir / kind / name
    folder.mkdir(parents=True, exist_ok=True)
    key = _new_key(profile)
    _write_private(folder / f"{name}.key", _pem_key(key))
    (folder / f"{name}.pem").write_bytes(_pem_public(key))
    return folder / f"{name}.pem"


def write_key_org(root: Path, org: str, consensus_nodes: int, profile: str = "ecdsa") -> Path:
    """One permissionedWithKey org: key pairs for its consensus nodes, common1, admin1 (the trust
    root) and client1 (a member once an admin registers it on chain)."""
    org_dir = root / org
    for j in range(1, consensus_nodes + 1):
        write_key_member(org_dir, "node", f"consensus{j}", profile)
    write_key_member(org_dir, "node", "common1", profile)
    write_key_member(org_dir, "user", "admin1", profile)
    write_key_member(org_dir, "user", "client1", profile)
    return org_dir


def spread(validators: int, orgs: int) -> list[int]:
    """How many validators each org runs: one per org by default, the rest in turn."""
    if orgs < 1:
        raise ValueError("--orgs must be at least 1")
    if orgs > validators:
        raise ValueError(
            f"--orgs {orgs} is more than the {validators} validators: every org runs at least one"
        )
    return [validators // orgs + (1 if i < validators % orgs else 0) for i in range(orgs)]
