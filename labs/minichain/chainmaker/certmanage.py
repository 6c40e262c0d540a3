"""``CERT_MANAGE``: certificates kept on chain by hash, and the frozen and revoked lists.

Like everything a validator judges a request by, these live in the state: a certificate frozen
or revoked by a block is refused by every validator from the next request on, and by the door
(``admit``) as soon as the block commits.

- ``CERT_ADD`` stores the sender's own certificate under its hash, so its later requests may name
  the hash alone (member type ``CERT_HASH``, the SDK's ``enable_cert_hash``); ``CERTS_DELETE``
  removes stored certificates, after which their hash names nobody.
- ``CERTS_FREEZE`` / ``CERTS_UNFREEZE`` name certificates (PEM), ``CERTS_REVOKE`` a CRL signed by
  a trusted CA (ECDSA, or SM2 on an SM2 chain). All three come down to one flag per (issuing CA,
  serial number), set by one path.
- permissionedWithKey chains have no certificates: their members are governed by ``PUBKEY_MANAGE``.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from eth.abc import StateAPI
from eth_typing import Address
from eth_utils import keccak

from . import pb, sm2
from .auth import VERIFY_FAILED, AuthError, Signer, Verifier, issuing_ca
from .chainconfig import CERT_MODE
from .configstate import clear_bytes, read_bytes, write_bytes
from .errors import RequestRefused

CERT_MANAGE = "CERT_MANAGE"
CERTS_ACCOUNT = Address(keccak(b"minichain.chainmaker.certificates")[12:])
FLAGS = {
    "CERTS_FREEZE": ("frozen", 1),
    "CERTS_UNFREEZE": ("frozen", 0),
    "CERTS_REVOKE": ("revoked", 1),
}
"""Method -> (flag, value): the three ways a certificate's standing changes."""
GOVERNED = {*FLAGS, "CERTS_DELETE"}
METHODS = {*GOVERNED, "CERT_ADD"}
QUERIES = {"CERTS_QUERY"}
CERT_HASH = pb.MemberType.Value("CERT_HASH")
CERT = pb.MemberType.Value("CERT")


def cert_hash(cert: x509.Certificate) -> bytes:
    """The hash a certificate is known by: its fingerprint with its own signature hash, as the
    SDK computes it for ``enable_cert_hash`` (SM3 for an SM2 certificate, which cryptography
    cannot name)."""
    if sm2.is_sm2_cert(cert):
        return sm2.sm3(cert.public_bytes(serialization.Encoding.DER))
    algorithm = cert.signature_hash_algorithm or hashes.SHA256()
    return cert.fingerprint(algorithm)


def _flag_slot(kind: str, ca: x509.Certificate, serial: int) -> int:
    key = kind.encode() + ca.fingerprint(hashes.SHA256()) + serial.to_bytes(32, "big")
    return int.from_bytes(keccak(key), "big")


def _hash_slot(digest: bytes) -> int:
    return int.from_bytes(keccak(b"cert" + digest), "big")


def _refuse(message: str) -> RequestRefused:
    return RequestRefused("INVALID_PARAMETER", message)


def stored_cert(state: StateAPI, digest: bytes) -> bytes | None:
    """The PEM stored under ``digest`` by CERT_ADD, if it is still there."""
    return read_bytes(state, CERTS_ACCOUNT, _hash_slot(digest))


def resolve_hashes(state: StateAPI, request: Any) -> Any:
    """``request`` with every CERT_HASH signer replaced by the certificate stored on chain, so
    the verifier checks it like any certificate; a hash nobody stored names an unknown signer."""
    entries = [request.sender, *request.endorsers] if request.HasField("sender") else []
    if not any(e.signer.member_type == CERT_HASH for e in entries):
        return request
    resolved = pb.TxRequest()
    resolved.CopyFrom(request)
    for entry in [resolved.sender, *resolved.endorsers]:
        if entry.signer.member_type != CERT_HASH:
            continue
        pem = stored_cert(state, bytes(entry.signer.member_info))
        if pem is None:
            raise AuthError(
                f"{VERIFY_FAILED}, unknown signer: certificate hash "
                f"{bytes(entry.signer.member_info).hex()[:16]}… is not on chain (CERT_ADD it)"
            )
        entry.signer.member_type = CERT
        entry.signer.member_info = pem
    return resolved


def check_standing(state: StateAPI, signer: Signer, who: str = "the signer") -> None:
    """Refuse a signer whose certificate was frozen or revoked on chain (a member known by its
    key alone has no certificate: its standing is its registration, :mod:`.pubkeys`)."""
    if signer.cert is None or signer.issuer is None:
        return
    serial = signer.cert.serial_number
    if state.get_storage(CERTS_ACCOUNT, _flag_slot("revoked", signer.issuer, serial)):
        raise AuthError(f"{VERIFY_FAILED}, the certificate of {who} is revoked")
    if state.get_storage(CERTS_ACCOUNT, _flag_slot("frozen", signer.issuer, serial)):
        raise AuthError(f"{VERIFY_FAILED}, the certificate of {who} is frozen")


def _pems(params: dict[str, bytes], verifier: Verifier) -> list[tuple[x509.Certificate, int]]:
    text = params.get("certs", b"").decode(errors="replace")
    pems = ["-----BEGIN" + p for p in text.split("-----BEGIN") if p.strip().strip(",")]
    if not pems:
        raise _refuse("no certs given: pass the PEM certificates, comma separated")
    out = []
    for pem in pems:
        try:
            cert = x509.load_pem_x509_certificate(pem.strip().rstrip(",").strip().encode())
        except ValueError:
            raise _refuse("a cert is not PEM") from None
        ca = issuing_ca(verifier, cert)
        if ca is None:
            raise _refuse("a cert is not from a trusted CA")
        out.append((ca, cert.serial_number))
    return out


def _crl(params: dict[str, bytes], verifier: Verifier) -> list[tuple[x509.Certificate, int]]:
    try:
        crl = x509.load_pem_x509_crl(params.get("cert_crl", b"").strip())
    except ValueError:
        raise _refuse("cert_crl is not a PEM CRL") from None
    ca = next(
        (c for cas in verifier.roots.values() for c in cas if _crl_signed_by(crl, c)),
        None,
    )
    if ca is None:
        raise _refuse("the CRL is not signed by a trusted CA")
    serials = [(ca, revoked.serial_number) for revoked in crl]
    if not serials:
        raise _refuse("the CRL revokes no certificate")
    return serials


def _crl_signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    try:
        key = ca.public_key()
    except UnsupportedAlgorithm:  # a curve cryptography lacks: an SM2 CA
        return sm2.crl_signed_by(crl, ca)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        return crl.issuer == ca.subject and crl.is_signature_valid(key)
    except (ValueError, TypeError):
        return False


def _hashes(params: dict[str, bytes]) -> list[bytes]:
    text = params.get("cert_hashes", b"").decode(errors="replace")
    out = []
    for item in (h.strip() for h in text.split(",")):
        if not item:
            continue
        try:
            out.append(bytes.fromhex(item))
        except ValueError:
            raise _refuse(f"cert hash {item[:20]!r} is not hex") from None
    if not out:
        raise _refuse("no cert_hashes given")
    return out


def manage(
    state: StateAPI, method: str, params: dict[str, bytes], sender: Signer, verifier: Verifier
) -> bytes:
    """Run one CERT_MANAGE method (endorsements already checked); its result bytes."""
    if verifier.config.auth_type != CERT_MODE:
        raise RequestRefused(
            "INVALID_CONTRACT_PARAMETER_METHOD",
            f"CERT_MANAGE serves permissionedWithCert chains; this one is "
            f"{verifier.config.auth_type}, whose members are keys: use PUBKEY_MANAGE",
        )
    if method == "CERT_ADD":
        if sender.cert is None:  # a cert chain's signers hold certificates; kept for the types
            raise _refuse("CERT_ADD stores the sender's certificate: sign as a certificate")
        digest = cert_hash(sender.cert)
        pem = sender.cert.public_bytes(serialization.Encoding.PEM)
        write_bytes(state, CERTS_ACCOUNT, _hash_slot(digest), pem)
        return digest.hex().encode()
    if method == "CERTS_DELETE":
        digests = _hashes(params)
        for digest in digests:
            if stored_cert(state, digest) is None:
                raise _refuse(f"cert hash {digest.hex()} is not on chain")
            clear_bytes(state, CERTS_ACCOUNT, _hash_slot(digest))
        return ",".join(d.hex() for d in digests).encode()
    kind, value = FLAGS[method]
    targets = _crl(params, verifier) if method == "CERTS_REVOKE" else _pems(params, verifier)
    for ca, serial in targets:
        slot = _flag_slot(kind, ca, serial)
        if kind == "frozen" and state.get_storage(CERTS_ACCOUNT, slot) == value:
            raise _refuse(f"certificate {serial} is {'frozen' if value else 'not frozen'} already")
    if state.get_nonce(CERTS_ACCOUNT) == 0:
        state.set_nonce(CERTS_ACCOUNT, 1)
    for ca, serial in targets:
        state.set_storage(CERTS_ACCOUNT, _flag_slot(kind, ca, serial), value)
    return ",".join(str(serial) for _, serial in targets).encode()


def query(state: StateAPI, params: dict[str, bytes]) -> bytes:
    """CERTS_QUERY: each hash with its certificate, or an empty one when it is not on chain."""
    infos = []
    for digest in _hashes(params):
        pem = stored_cert(state, digest) or b""
        infos.append(pb.CertInfo(hash=digest.hex(), cert=pem))
    return pb.CertInfos(cert_infos=infos).SerializeToString()
