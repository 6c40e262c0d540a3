"""Data Integrity proofs with the ``eddsa-jcs-2022`` cryptosuite, and proof sets.

The algorithm (W3C "Data Integrity EdDSA Cryptosuites v1.0", section 3.3):

1. proof configuration = the proof object without ``proofValue``; if the document has an
   ``@context``, the configuration carries the same ``@context``;
2. hashData = SHA-256(JCS(proof configuration)) || SHA-256(JCS(document without ``proof``));
3. proofValue = multibase base58btc of the Ed25519 signature over hashData.

A credential may hold several proofs (a *proof set*, ``proof`` is then a list). Each one signs the
document without any proof, so a proof can be checked alone, whichever others sit beside it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .jcs import CanonicalizationError, canonicalize
from .keys import (
    IssuerKey,
    KeyFormatError,
    b58btc,
    from_b58btc,
    multikey_from_reference,
    verify_signature,
)

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"


def proofs_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The proofs of a document as a list (a single ``proof`` object is a set of one)."""
    proof = document.get("proof")
    if proof is None:
        return []
    if isinstance(proof, dict):
        return [proof]
    if isinstance(proof, list) and all(isinstance(p, dict) for p in proof):
        return list(proof)
    raise ValueError("'proof' must be an object or a list of objects")


def without_proof(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "proof"}


def with_proofs(document: dict[str, Any], proofs: list[dict[str, Any]]) -> dict[str, Any]:
    out = without_proof(document)
    if proofs:
        out["proof"] = proofs[0] if len(proofs) == 1 else list(proofs)
    return out


def hash_data(unsecured: dict[str, Any], proof_config: dict[str, Any]) -> bytes:
    """proofConfigHash || documentHash (64 bytes), what Ed25519 signs."""
    return (
        hashlib.sha256(canonicalize(proof_config)).digest()
        + hashlib.sha256(canonicalize(unsecured)).digest()
    )


def create_proof(
    document: dict[str, Any],
    key: IssuerKey,
    created: str,
    verification_method: str | None = None,
    proof_purpose: str = "assertionMethod",
) -> dict[str, Any]:
    """An eddsa-jcs-2022 proof of ``document`` (which must not carry a proof yet)."""
    unsecured = without_proof(document)
    config: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method or key.verification_method,
        "proofPurpose": proof_purpose,
    }
    if "@context" in unsecured:
        config["@context"] = unsecured["@context"]
    signature = key.sign(hash_data(unsecured, config))
    return {**config, "proofValue": b58btc(signature)}


def sign(
    document: dict[str, Any], key: IssuerKey, created: str, verification_method: str | None = None
) -> dict[str, Any]:
    """``document`` secured with one eddsa-jcs-2022 proof added to its proof set."""
    proof = create_proof(document, key, created, verification_method)
    return with_proofs(document, [*proofs_of(document), proof])


@dataclass
class ProofCheck:
    ok: bool
    detail: str
    multikey: str | None = None


def is_signature_proof(proof: dict[str, Any]) -> bool:
    return proof.get("type") == PROOF_TYPE


def verify_proof(
    document: dict[str, Any], proof: dict[str, Any], multikey: str | None = None
) -> ProofCheck:
    """Check one proof of ``document``. ``multikey`` is the key the verifier expects; when None
    the key named by the proof's verificationMethod is used (its trust is checked elsewhere)."""
    if proof.get("type") != PROOF_TYPE:
        return ProofCheck(False, f"unknown proof type {proof.get('type')!r}")
    if proof.get("cryptosuite") != CRYPTOSUITE:
        return ProofCheck(
            False, f"unknown cryptosuite {proof.get('cryptosuite')!r} (supported: {CRYPTOSUITE})"
        )
    if proof.get("proofPurpose") != "assertionMethod":
        return ProofCheck(False, f"proof purpose {proof.get('proofPurpose')!r} is not assertion")
    for name in ("created", "verificationMethod", "proofValue"):
        if not isinstance(proof.get(name), str):
            return ProofCheck(False, f"proof has no {name}")
    try:
        named = multikey_from_reference(proof["verificationMethod"])
    except KeyFormatError as exc:
        return ProofCheck(False, f"verificationMethod: {exc}")
    if multikey is not None and named != multikey:
        return ProofCheck(False, "signed by another key than the one given", named)
    unsecured = without_proof(document)
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    if "@context" in config and config["@context"] != unsecured.get("@context"):
        return ProofCheck(False, "the proof's @context differs from the document's", named)
    try:
        signature = from_b58btc(proof["proofValue"], "proofValue")
        data = hash_data(unsecured, config)
    except (KeyFormatError, CanonicalizationError) as exc:
        return ProofCheck(False, str(exc), named)
    if len(signature) != 64 or not verify_signature(named, signature, data):
        return ProofCheck(False, "the Ed25519 signature does not match the document", named)
    return ProofCheck(True, f"eddsa-jcs-2022 signature by {named[:16]}...", named)
