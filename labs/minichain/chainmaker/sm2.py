"""SM2 with SM3, ChainMaker's national-cryptography profile, through Tongsuo (``tongsuopy``).

A signature is SM2 over SM3(Z || message), where Z digests the signer's public key and the default
user ID ``1234567812345678`` (GB/T 32918.2): what ChainMaker and its Python SDK sign with, and
what Tongsuo computes when no other ID is set. Certificates are signed the same way over their
TBSCertificate, with the algorithm ``SM2-with-SM3`` (1.2.156.10197.1.501).

``cryptography`` reads SM2 certificates (names, serial, extensions, signature) but holds no SM2
key, so a certificate is written by cryptography's builder with a stand-in P-256 key and then has
its public key and signature algorithm swapped for SM2's before Tongsuo signs it. Private keys
are PKCS#8 around an ECPrivateKey that names the curve and carries the public point, the form
chainmaker-cryptogen writes and the only one the SDK's key reader takes.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec as pyca_ec
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ
from pyasn1_modules import rfc5208, rfc5280
from tongsuopy.crypto import hashes as ts_hashes
from tongsuopy.crypto import serialization as ts_serialization
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto.exceptions import InvalidSignature

EC_PUBLIC_KEY = "1.2.840.10045.2.1"
SM2_CURVE = "1.2.156.10197.1.301"
SM2_WITH_SM3 = "1.2.156.10197.1.501"

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey


def generate() -> PrivateKey:
    return ec.generate_private_key(ec.SM2())


def private_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM whose ECPrivateKey names the SM2 curve and carries the public point."""
    inner = key.private_bytes(
        ts_serialization.Encoding.DER,
        ts_serialization.PrivateFormat.TraditionalOpenSSL,
        ts_serialization.NoEncryption(),
    )
    info = rfc5208.PrivateKeyInfo()
    info["version"] = 0
    info["privateKeyAlgorithm"]["algorithm"] = univ.ObjectIdentifier(EC_PUBLIC_KEY)
    info["privateKeyAlgorithm"]["parameters"] = encoder.encode(univ.ObjectIdentifier(SM2_CURVE))
    info["privateKey"] = inner
    return _pem("PRIVATE KEY", encoder.encode(info))


def load_private(pem: bytes) -> PrivateKey:
    key = ts_serialization.load_pem_private_key(pem, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "SM2":
        raise ValueError("not an SM2 private key")
    return key


def public_der(key: PublicKey) -> bytes:
    """The SubjectPublicKeyInfo of an SM2 key (ecPublicKey on the SM2 curve)."""
    return bytes(
        key.public_bytes(
            ts_serialization.Encoding.DER, ts_serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def public_pem(key: PublicKey) -> bytes:
    return _pem("PUBLIC KEY", public_der(key))


def load_public_der(der: bytes) -> PublicKey:
    key = ts_serialization.load_der_public_key(der)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "SM2":
        raise ValueError("not an SM2 public key")
    return key


def point(key: PublicKey) -> bytes:
    numbers = key.public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def sign(key: PrivateKey, data: bytes) -> bytes:
    """DER SM2 signature over SM3(Z || data) with the default user ID."""
    return bytes(key.sign(data, ec.ECDSA(ts_hashes.SM3())))


def verify(key: PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, ec.ECDSA(ts_hashes.SM3()))
    except (InvalidSignature, ValueError):
        return False
    return True


def sm3(data: bytes) -> bytes:
    digest = ts_hashes.Hash(ts_hashes.SM3())
    digest.update(data)
    return bytes(digest.finalize())


def subject_public_key_info(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo DER, whatever its algorithm."""
    tbs, _ = decoder.decode(cert.tbs_certificate_bytes, asn1Spec=rfc5280.TBSCertificate())
    return bytes(encoder.encode(tbs["subjectPublicKeyInfo"]))


def is_sm2_cert(cert: x509.Certificate) -> bool:
    return cert.signature_algorithm_oid.dotted_string == SM2_WITH_SM3


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """``ca`` (an SM2 CA) signed ``cert`` with SM2-with-SM3, and names itself as its issuer."""
    if not is_sm2_cert(cert) or cert.issuer != ca.subject:
        return False
    try:
        ca_key = load_public_der(subject_public_key_info(ca))
    except Exception:  # an unreadable or non-SM2 key: not this CA
        return False
    return verify(ca_key, cert.signature, cert.tbs_certificate_bytes)


def ski(key: PublicKey) -> bytes:
    """The subject key identifier ChainMaker's SM2 profile uses: SM3 of the public point."""
    return sm3(b"\x04" + point(key))


def issue(
    builder: x509.CertificateBuilder,
    subject_key: PublicKey,
    issuer_key: PrivateKey,
    days: int,
) -> x509.Certificate:
    """Finish ``builder`` (names, serial, extensions) as an SM2 certificate of ``subject_key``
    signed by ``issuer_key``. The builder must not set a public key or validity."""
    now = dt.datetime.now(dt.UTC)
    stand_in = pyca_ec.generate_private_key(pyca_ec.SECP256R1())
    draft = (
        builder.public_key(stand_in.public_key())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(stand_in, hashes.SHA256())
    )
    tbs, _ = decoder.decode(draft.tbs_certificate_bytes, asn1Spec=rfc5280.TBSCertificate())
    spki, _ = decoder.decode(public_der(subject_key), asn1Spec=rfc5280.SubjectPublicKeyInfo())
    tbs["subjectPublicKeyInfo"] = spki
    algorithm = rfc5280.AlgorithmIdentifier()
    algorithm["algorithm"] = univ.ObjectIdentifier(SM2_WITH_SM3)
    tbs["signature"] = algorithm
    tbs_der = encoder.encode(tbs)
    cert = rfc5280.Certificate()
    cert["tbsCertificate"] = tbs
    cert["signatureAlgorithm"] = algorithm
    cert["signature"] = univ.BitString.fromOctetString(sign(issuer_key, tbs_der))
    return x509.load_der_x509_certificate(encoder.encode(cert))


def crl_signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    """``ca`` (an SM2 CA) signed ``crl`` with SM2-with-SM3, and the CRL names it as issuer."""
    if crl.signature_algorithm_oid.dotted_string != SM2_WITH_SM3 or crl.issuer != ca.subject:
        return False
    try:
        ca_key = load_public_der(subject_public_key_info(ca))
    except Exception:  # an unreadable or non-SM2 key: not this CA
        return False
    return verify(ca_key, crl.signature, crl.tbs_certlist_bytes)


def revocation_list(
    builder: x509.CertificateRevocationListBuilder, issuer_key: PrivateKey
) -> x509.CertificateRevocationList:
    """Sign ``builder`` (issuer, dates, revoked certificates) with an SM2 CA key. The SDK's own
    ``create_cert_crl`` signs with cryptography, which has no SM2: on an SM2 chain a CRL comes
    from here (or from OpenSSL)."""
    stand_in = pyca_ec.generate_private_key(pyca_ec.SECP256R1())
    draft = builder.sign(stand_in, hashes.SHA256())
    tbs, _ = decoder.decode(draft.tbs_certlist_bytes, asn1Spec=rfc5280.TBSCertList())
    algorithm = rfc5280.AlgorithmIdentifier()
    algorithm["algorithm"] = univ.ObjectIdentifier(SM2_WITH_SM3)
    tbs["signature"] = algorithm
    tbs_der = encoder.encode(tbs)
    crl = rfc5280.CertificateList()
    crl["tbsCertList"] = tbs
    crl["signatureAlgorithm"] = algorithm
    crl["signature"] = univ.BitString.fromOctetString(sign(issuer_key, tbs_der))
    return x509.load_der_x509_crl(encoder.encode(crl))


def _pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join(
        [f"-----BEGIN {label}-----".encode(), *lines, f"-----END {label}-----\n".encode()]
    )
