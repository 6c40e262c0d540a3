"""A member's public key under either of ChainMaker's crypto profiles.

ECDSA (P-256) keys verify with SHA-256, ChainMaker's default; SM2 keys verify with SM3 and the
default user ID (:mod:`.sm2`). The key's own algorithm decides, so a chain holds no separate
switch that a request could contradict: an SM2 signature made over a SHA-256 digest, or an
ECDSA signature offered for an SM2 key, simply does not verify.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from eth_utils import keccak

from . import sm2

ECDSA, SM2 = "ecdsa", "sm2"


@dataclass(frozen=True, eq=False)
class MemberKey:
    kind: str
    """``ecdsa`` or ``sm2``."""
    point: bytes
    """The public point, x || y (64 bytes)."""
    key: Any

    @property
    def id(self) -> bytes:
        """What names this key on chain, whatever PEM wrapping it came in."""
        return self.kind.encode() + b":" + self.point

    @property
    def address(self) -> bytes:
        """The EVM address of the key: keccak of the public point, last 20 bytes."""
        return keccak(self.point)[12:]

    def verify(self, signature: bytes, data: bytes) -> bool:
        if self.kind == SM2:
            return sm2.verify(self.key, signature, data)
        try:
            self.key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def spki_pem(self) -> bytes:
        if self.kind == SM2:
            return sm2.public_pem(self.key)
        return bytes(
            self.key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def from_spki(der: bytes) -> MemberKey:
    """An ECDSA or SM2 key from its SubjectPublicKeyInfo; ValueError for anything else."""
    try:
        key = serialization.load_der_public_key(der)
    except UnsupportedAlgorithm:
        sm2_key = sm2.load_public_der(der)
        return MemberKey(SM2, sm2.point(sm2_key), sm2_key)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("only ECDSA and SM2 keys are supported")
    numbers = key.public_numbers()
    size = (key.curve.key_size + 7) // 8
    return MemberKey(ECDSA, numbers.x.to_bytes(size, "big") + numbers.y.to_bytes(size, "big"), key)


def from_pem(pem: bytes) -> MemberKey:
    """A PEM public key (``-----BEGIN PUBLIC KEY-----``), as permissionedWithKey members send."""
    text = pem.decode("ascii", errors="replace").strip()
    head, tail = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"
    if not text.startswith(head) or not text.endswith(tail):
        raise ValueError("not a PEM public key")
    try:
        der = base64.b64decode("".join(text[len(head) : -len(tail)].split()), validate=True)
    except ValueError:
        raise ValueError("not a PEM public key") from None
    return from_spki(der)


def from_certificate(cert: x509.Certificate) -> MemberKey:
    return from_spki(sm2.subject_public_key_info(cert))


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """``ca`` signed ``cert`` directly (ECDSA with SHA-256 or SM2 with SM3)."""
    if sm2.is_sm2_cert(cert):
        return sm2.issued_by(cert, ca)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True
