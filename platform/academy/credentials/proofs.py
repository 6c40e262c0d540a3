"""Data Integrity proofs with the ``eddsa-jcs-2022`` and ``eddsa-rdfc-2022`` cryptosuites, and
the proof set every academy credential carries.

Both suites follow one algorithm (W3C "Data Integrity EdDSA Cryptosuites v1.0", sections 3.3
and 3.4) and differ only in how a document becomes bytes:

1. proof configuration = the proof object without ``proofValue``; if the document has an
   ``@context``, the configuration carries the same ``@context``;
2. hashData = SHA-256(canon(proof configuration)) || SHA-256(canon(document without ``proof``)),
   where canon is RFC 8785 JCS (eddsa-jcs-2022: the JSON itself) or RDFC-1.0 canonical N-Quads
   (eddsa-rdfc-2022: what the JSON-LD means, see :mod:`.rdfc`);
3. proofValue = multibase base58btc of the Ed25519 signature over hashData.

A verifier holding a proof with an ``@context`` accepts a document whose ``@context`` *starts
with* the proof's (a holder may add contexts after the issuer's) and hashes the document with the
proof's ``@context``, as the specification asks.

Every credential academy issues carries both proofs (:data:`REQUIRED_SUITES`), by the same key, so
a JSON-only verifier and an RDF-based one can each check it; academy's verifier requires both and
refuses a document with either missing, invalid, duplicated or by another key
(:func:`verify_proof_set`). Each proof signs the document without any proof, so either can be
checked alone, whichever others sit beside it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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
from .rdfc import RdfcError, canonical_nquads

PROOF_TYPE = "DataIntegrityProof"
JCS_SUITE = "eddsa-jcs-2022"
RDFC_SUITE = "eddsa-rdfc-2022"
CRYPTOSUITE = JCS_SUITE
CRYPTOSUITES = (JCS_SUITE, RDFC_SUITE)
REQUIRED_SUITES = (JCS_SUITE, RDFC_SUITE)
"""The proofs a credential must carry to pass academy's verifier: one of each, by one key."""


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


_CONFIG_HASHES: dict[bytes, bytes] = {}
"""RDFC hashes of proof configurations by their JCS bytes: a batch signs one configuration for
all its credentials, and a verifier meets the same few again and again."""
_CONFIG_HASHES_MAX = 4096


def _canonical_hash(value: dict[str, Any], cryptosuite: str) -> bytes:
    if cryptosuite == JCS_SUITE:
        return hashlib.sha256(canonicalize(value)).digest()
    return hashlib.sha256(canonical_nquads(value).encode()).digest()


def _config_hash(config: dict[str, Any], cryptosuite: str) -> bytes:
    if cryptosuite == JCS_SUITE:
        return _canonical_hash(config, cryptosuite)
    key = canonicalize(config)
    found = _CONFIG_HASHES.get(key)
    if found is None:
        found = _canonical_hash(config, cryptosuite)
        if len(_CONFIG_HASHES) >= _CONFIG_HASHES_MAX:
            _CONFIG_HASHES.clear()
        _CONFIG_HASHES[key] = found
    return found


def hash_data(
    unsecured: dict[str, Any], proof_config: dict[str, Any], cryptosuite: str = JCS_SUITE
) -> bytes:
    """proofConfigHash || documentHash (64 bytes), what Ed25519 signs. Raises
    :class:`~.jcs.CanonicalizationError` or :class:`~.rdfc.RdfcError` for a document that has no
    canonical form under ``cryptosuite``."""
    if cryptosuite not in CRYPTOSUITES:
        raise ValueError(f"unknown cryptosuite {cryptosuite!r}")
    return _config_hash(proof_config, cryptosuite) + _canonical_hash(unsecured, cryptosuite)


def proof_config(
    unsecured: dict[str, Any],
    created: str,
    verification_method: str,
    cryptosuite: str,
    proof_purpose: str = "assertionMethod",
) -> dict[str, Any]:
    """The proof configuration (the proof without ``proofValue``) for ``unsecured``."""
    config: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": cryptosuite,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if "@context" in unsecured:
        config["@context"] = unsecured["@context"]
    return config


def create_proof(
    document: dict[str, Any],
    key: IssuerKey,
    created: str,
    verification_method: str | None = None,
    proof_purpose: str = "assertionMethod",
    cryptosuite: str = JCS_SUITE,
) -> dict[str, Any]:
    """A ``cryptosuite`` proof of ``document`` (its proofs, if any, are not signed)."""
    unsecured = without_proof(document)
    method = verification_method or key.verification_method
    config = proof_config(unsecured, created, method, cryptosuite, proof_purpose)
    signature = key.sign(hash_data(unsecured, config, cryptosuite))
    return {**config, "proofValue": b58btc(signature)}


def signing_hashes(
    document: dict[str, Any],
    created: str,
    verification_method: str,
    cryptosuites: Sequence[str] = REQUIRED_SUITES,
) -> list[bytes]:
    """What :func:`sign` has the key sign, one hashData per cryptosuite: the costly part of
    signing (canonicalization), which needs no key and so may run in another process."""
    unsecured = without_proof(document)
    return [
        hash_data(unsecured, proof_config(unsecured, created, verification_method, suite), suite)
        for suite in cryptosuites
    ]


def sign(
    document: dict[str, Any],
    key: IssuerKey,
    created: str,
    verification_method: str | None = None,
    cryptosuites: Sequence[str] = REQUIRED_SUITES,
    hashes: Sequence[bytes] | None = None,
) -> dict[str, Any]:
    """``document`` secured with one proof per cryptosuite (by default every suite academy's
    verifier requires) added to its proof set. ``hashes``: :func:`signing_hashes` of the same
    document, arguments and suites, computed beforehand (elsewhere); None: computed here."""
    method = verification_method or key.verification_method
    if hashes is None:
        hashes = signing_hashes(document, created, method, cryptosuites)
    unsecured = without_proof(document)
    added = [
        {**proof_config(unsecured, created, method, suite), "proofValue": b58btc(key.sign(data))}
        for suite, data in zip(cryptosuites, hashes, strict=True)
    ]
    return with_proofs(document, [*proofs_of(document), *added])


@dataclass
class ProofCheck:
    ok: bool
    detail: str
    multikey: str | None = None


def is_signature_proof(proof: dict[str, Any]) -> bool:
    return proof.get("type") == PROOF_TYPE


def _context_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def verify_proof(
    document: dict[str, Any], proof: dict[str, Any], multikey: str | None = None
) -> ProofCheck:
    """Check one proof of ``document``. ``multikey`` is the key the verifier expects; when None
    the key named by the proof's verificationMethod is used (its trust is checked elsewhere)."""
    if proof.get("type") != PROOF_TYPE:
        return ProofCheck(False, f"unknown proof type {proof.get('type')!r}")
    suite = proof.get("cryptosuite")
    if suite not in CRYPTOSUITES:
        return ProofCheck(
            False, f"unknown cryptosuite {suite!r} (supported: {', '.join(CRYPTOSUITES)})"
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
    if "@context" in config:
        signed_context = _context_list(config["@context"])
        present = _context_list(unsecured.get("@context"))
        if present[: len(signed_context)] != signed_context:
            return ProofCheck(
                False, "the document's @context does not start with the proof's @context", named
            )
        unsecured["@context"] = config["@context"]
    elif suite == RDFC_SUITE and "@context" in unsecured:
        # RDF needs the contexts to read the proof's terms: the configuration is hashed with
        # the document's, whether or not the proof repeats them
        config["@context"] = unsecured["@context"]
    try:
        signature = from_b58btc(proof["proofValue"], "proofValue")
        data = hash_data(unsecured, config, str(suite))
    except (KeyFormatError, CanonicalizationError, RdfcError) as exc:
        return ProofCheck(False, f"{suite}: {exc}", named)
    if len(signature) != 64 or not verify_signature(named, signature, data):
        return ProofCheck(False, f"the {suite} signature does not match the document", named)
    return ProofCheck(True, f"{suite} signature by {named[:16]}...", named)


def verify_proof_set(document: dict[str, Any], multikey: str | None = None) -> ProofCheck:
    """Check the signature proofs of ``document`` as academy requires them: exactly one proof
    of each of :data:`REQUIRED_SUITES`, no other signature proof, all by one key, each valid.
    Asking for both closes the downgrade path: stripping the proof a verifier would have
    checked, or renaming a suite, leaves a document that is refused, not one checked less."""
    sigs = [p for p in proofs_of(document) if is_signature_proof(p)]
    if not sigs:
        return ProofCheck(False, "no DataIntegrityProof signature")
    by_suite: dict[str, list[dict[str, Any]]] = {}
    for p in sigs:
        by_suite.setdefault(str(p.get("cryptosuite")), []).append(p)
    unknown = sorted(set(by_suite) - set(CRYPTOSUITES))
    if unknown:
        return ProofCheck(
            False, f"unknown cryptosuite {unknown[0]!r} (supported: {', '.join(CRYPTOSUITES)})"
        )
    for suite in REQUIRED_SUITES:
        if suite not in by_suite:
            return ProofCheck(
                False,
                f"no {suite} proof: academy credentials carry one {' and one '.join(REQUIRED_SUITES)}"
                " proof, and a document missing either is refused",
            )
        if len(by_suite[suite]) > 1:
            return ProofCheck(False, f"more than one {suite} proof")
    details, signer = [], None
    for suite in REQUIRED_SUITES:
        result = verify_proof(document, by_suite[suite][0], multikey)
        if not result.ok:
            return result
        if signer is not None and result.multikey != signer:
            return ProofCheck(False, "the proofs are signed by different keys", result.multikey)
        if by_suite[suite][0]["created"] != by_suite[REQUIRED_SUITES[0]][0]["created"]:
            return ProofCheck(False, "the proofs carry different creation times", signer)
        signer = result.multikey
        details.append(result.detail)
    return ProofCheck(True, "; ".join(details), signer)
