"""Orgs, CAs and member certificates in chainmaker-cryptogen's layout and names.

::

    crypto-config/wx-org1.chainmaker.org/ca/ca.key, ca.crt
    crypto-config/wx-org1.chainmaker.org/node/consensus1/consensus1.{sign,tls}.{key,crt}
    crypto-config/wx-org1.chainmaker.org/node/common1/common1.{sign,tls}.{key,crt}
    crypto-config/wx-org1.chainmaker.org/user/admin1/admin1.{sign,tls}.{key,crt}
    crypto-config/wx-org1.chainmaker.org/user/client1/client1.{sign,tls}.{key,crt}

The same layout as ChainMaker's own tool, so its docs and the SDK's examples apply unchanged. A
member's role is the certificate's OU (admin, client, consensus, common), its org the O, as
ChainMaker reads them; keys are ECDSA P-256 and certificates are signed with SHA-256, ChainMaker's
default profile. TLS certificates name ``chainmaker.org``, ``localhost`` and ``127.0.0.1``, the
host names the SDK's examples connect with.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_DAYS = 3650
DOMAIN = "chainmaker.org"
TLS_NAMES = ("chainmaker.org", "localhost")
ROLES = ("admin", "client", "consensus", "common")


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


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
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


def make_org_ca(org: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(org, "root-cert", f"ca.{org}")
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
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
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_member_cert(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    org: str,
    role: str,
    common_name: str,
    tls: bool,
) -> x509.Certificate:
    """A sign or TLS certificate for one member, as chainmaker-cryptogen issues it."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(org, role, common_name))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
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
    return builder.sign(ca_key, hashes.SHA256())


def load_ca(org_dir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key((org_dir / "ca" / "ca.key").read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{org_dir}/ca/ca.key is not an ECDSA key")
    cert = x509.load_pem_x509_certificate((org_dir / "ca" / "ca.crt").read_bytes())
    return key, cert


def write_member(org_dir: Path, org: str, kind: str, name: str, role: str) -> MemberFiles:
    """Issue ``name``'s sign and TLS key pairs from the org's CA into ``org_dir/kind/name/``."""
    ca_key, ca_cert = load_ca(org_dir)
    folder = org_dir / kind / name
    folder.mkdir(parents=True, exist_ok=True)
    member = MemberFiles(org, name, role, folder)
    for use in ("sign", "tls"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue_member_cert(
            ca_key, ca_cert, key.public_key(), org, role, f"{name}.{use}.{org}", tls=use == "tls"
        )
        _write_private(member.path(f"{use}.key"), _pem_key(key))
        member.path(f"{use}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return member


def write_org(root: Path, org: str, consensus_nodes: int) -> Path:
    """One org's CA and its members: ``consensus_nodes`` consensus nodes, common1, admin1, client1."""
    org_dir = root / org
    (org_dir / "ca").mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = make_org_ca(org)
    _write_private(org_dir / "ca" / "ca.key", _pem_key(ca_key))
    (org_dir / "ca" / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for j in range(1, consensus_nodes + 1):
        write_member(org_dir, org, "node", f"consensus{j}", "consensus")
    write_member(org_dir, org, "node", "common1", "common")
    write_member(org_dir, org, "user", "admin1", "admin")
    write_member(org_dir, org, "user", "client1", "client")
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
