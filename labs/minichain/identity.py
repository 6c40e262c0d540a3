"""Validator identity: Ed25519 keys, the consortium CA and X.509 node certificates.

Two modes, as in ChainMaker:

- ``permissionedWithCert``: a node is a member because the consortium CA signed its certificate. A
  message signed with a key that has no valid certificate from that CA is dropped.
- ``permissionedWithKey``: a node is a member because its public key is in the genesis list.

Either way consensus messages carry Ed25519 signatures; this module only decides *which keys count*.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from .genesis import Genesis

CERT_DAYS = 3650


class IdentityError(ValueError):
    """A key or certificate cannot be used; the message says what to fix."""


def node_id(public_key: bytes) -> str:
    """A validator's id: the first 20 bytes of sha256(public key), hex — short enough to read."""
    return hashlib.sha256(public_key).hexdigest()[:40]


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def key_to_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise IdentityError(f"no node key at {path}: run `academy chain init` first") from exc
    except ValueError as exc:
        raise IdentityError(f"{path} is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"{path} holds a {type(key).__name__}; validators use Ed25519 keys")
    return key


def _name(common_name: str, org: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(org: str = "minichain consortium") -> tuple[Ed25519PrivateKey, x509.Certificate]:
    """A self-signed consortium root CA."""
    key = generate_key()
    now = dt.datetime.now(dt.UTC)
    name = _name(f"{org} root CA", org, "ca")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, None)
    )
    return key, cert


def issue_node_cert(
    ca_key: Ed25519PrivateKey,
    ca_cert: x509.Certificate,
    public_key: Ed25519PublicKey,
    org: str = "minichain consortium",
    role: str = "consensus",
    days: int = CERT_DAYS,
    not_before: dt.datetime | None = None,
) -> x509.Certificate:
    """A certificate for one node's key. The OU carries its role (consensus or common)."""
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(node_id(raw_public(public_key)), org, role))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, None)
    )


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_cert(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise IdentityError(f"not a PEM certificate: {exc}") from exc


def cert_is_valid(
    cert: x509.Certificate, ca_cert: x509.Certificate, at: dt.datetime | None
) -> bool:
    """True when ``ca_cert`` signed ``cert`` and ``at`` lies in its validity period."""
    ca_key = ca_cert.public_key()
    if not isinstance(ca_key, Ed25519PublicKey) or cert.issuer != ca_cert.subject:
        return False
    try:
        ca_key.verify(cert.signature, cert.tbs_certificate_bytes)
    except InvalidSignature:
        return False
    when = at or dt.datetime.now(dt.UTC)
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


@dataclass
class Member:
    id: str
    public_key: Ed25519PublicKey
    raw_key: bytes


class Membership:
    """Which validator keys count, by the genesis rules. Checks are done once, at load time."""

    def __init__(self, genesis: Genesis) -> None:
        self.mode = genesis.identity_mode
        self.members: dict[str, Member] = {}
        self.rejected: dict[str, str] = {}
        ca = load_cert(genesis.ca_cert) if genesis.ca_cert else None
        self.ca = ca
        for v in genesis.validators:
            raw = bytes.fromhex(v.public_key)
            if node_id(raw) != v.id:
                self.rejected[v.id] = "id does not match its public key"
                continue
            if self.mode == "permissionedWithCert":
                reason = self._cert_problem(v.cert, raw, ca)
                if reason:
                    self.rejected[v.id] = reason
                    continue
            self.members[v.id] = Member(v.id, Ed25519PublicKey.from_public_bytes(raw), raw)

    @staticmethod
    def _cert_problem(pem: str | None, raw: bytes, ca: x509.Certificate | None) -> str | None:
        if ca is None or not pem:
            return "no certificate"
        try:
            cert = load_cert(pem)
        except IdentityError as exc:
            return str(exc)
        key = cert.public_key()
        if not isinstance(key, Ed25519PublicKey) or raw_public(key) != raw:
            return "certificate is for another key"
        if not cert_is_valid(cert, ca, None):
            return "certificate not signed by the consortium CA or expired"
        return None

    def learn(self, node: str, pem: str) -> bool:
        """Admit a node that is not in the genesis by its certificate: cert mode only, a valid
        certificate from the consortium CA for the key ``node`` is named after. Whether it also
        votes is for the chain configuration to say (its consensus nodes), not for this."""
        if self.mode != "permissionedWithCert" or self.ca is None or node in self.members:
            return node in self.members
        try:
            key = load_cert(pem).public_key()
        except IdentityError:
            return False
        if not isinstance(key, Ed25519PublicKey):
            return False
        raw = raw_public(key)
        if node_id(raw) != node or self._cert_problem(pem, raw, self.ca) is not None:
            return False
        self.members[node] = Member(node, key, raw)
        self.rejected.pop(node, None)
        return True

    def verify(self, signer: str, data: bytes, signature: bytes) -> bool:
        member = self.members.get(signer)
        if member is None:
            return False
        try:
            member.public_key.verify(signature, data)
        except InvalidSignature:
            return False
        return True
