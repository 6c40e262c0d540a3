"""The W3C vc-di-eddsa test vectors for eddsa-jcs-2022: verify each published signed credential,
and reproduce every published hash and signature from the published key pair.

The vectors live in ``vectors/w3c-vc-di-eddsa`` (see its SOURCE.md for the commits they come from).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
from academy.credentials import proofs
from academy.credentials.jcs import canonicalize
from academy.credentials.keys import IssuerKey, b58btc

VECTORS = Path(__file__).parent / "vectors" / "w3c-vc-di-eddsa"
KEYPAIR = json.loads((VECTORS / "keyPair.json").read_text())
PUBLIC = KEYPAIR["publicKeyMultibase"]


def text(path: str) -> str:
    return (VECTORS / path).read_text().strip()


def signed(folder: str) -> dict:
    return json.loads((VECTORS / folder / "signedJCS.json").read_text())


def unsigned() -> dict:
    return proofs.without_proof(signed("4ced357"))


def test_key_pair_matches() -> None:
    key = IssuerKey.from_secret_multibase(KEYPAIR["privateKeyMultibase"])
    assert key.multikey == PUBLIC
    assert key.secret_multibase() == KEYPAIR["privateKeyMultibase"]


@pytest.mark.parametrize("folder", ["4ced357", "369f0f0"])
def test_published_signed_credentials_verify(folder: str) -> None:
    doc = signed(folder)
    result = proofs.verify_proof(doc, doc["proof"], PUBLIC)
    assert result.ok, result.detail
    assert result.multikey == PUBLIC


@pytest.mark.parametrize("folder", ["4ced357", "369f0f0"])
def test_published_signatures_reproduce(folder: str) -> None:
    doc = signed(folder)
    key = IssuerKey.from_secret_multibase(KEYPAIR["privateKeyMultibase"])
    published = doc["proof"]
    config = {k: v for k, v in published.items() if k != "proofValue"}
    data = proofs.hash_data(proofs.without_proof(doc), config)
    signature = key.sign(data)  # Ed25519 is deterministic: same key + data = same bytes
    assert b58btc(signature) == published["proofValue"]
    if folder == "4ced357":
        assert data[:32].hex() == text("4ced357/proofHashJCS.txt")
        assert data[32:].hex() == text("4ced357/docHashJCS.txt")
        assert b58btc(signature) == text("4ced357/sigBTC58JCS.txt")
    else:
        assert signature.hex() == text("369f0f0/sigHexJCS.txt")


def test_did_key_vector_reproduces() -> None:
    key = IssuerKey.from_secret_multibase(KEYPAIR["privateKeyMultibase"])
    config = json.loads((VECTORS / "c3b58d0" / "proofConfigJCS.json").read_text())
    signature = key.sign(proofs.hash_data(unsigned(), config))
    assert signature.hex() == text("c3b58d0/sigHexJCS.txt")
    doc = {**unsigned(), "proof": {**config, "proofValue": b58btc(signature)}}
    assert proofs.verify_proof(doc, doc["proof"], PUBLIC).ok


def test_recommendation_example_reproduces_with_our_create_proof() -> None:
    """``create_proof`` (which copies the document's @context into the proof, as the final
    specification says) yields byte for byte the Recommendation's canonical forms and signature."""
    key = IssuerKey.from_secret_multibase(KEYPAIR["privateKeyMultibase"])
    doc = unsigned()
    assert canonicalize(doc).decode() == text("recommendation/canonDocJCS.txt")
    proof = proofs.create_proof(doc, key, created="2023-02-24T23:36:38Z")
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    assert canonicalize(config).decode() == text("recommendation/proofCanonJCS.txt")
    combined = (
        hashlib.sha256(canonicalize(config)).digest() + hashlib.sha256(canonicalize(doc)).digest()
    )
    assert combined.hex() == text("recommendation/combinedHashJCS.txt")
    assert proof["proofValue"] == text("recommendation/sigBTC58JCS.txt")
    assert proofs.from_b58btc(proof["proofValue"]).hex() == text("recommendation/sigHexJCS.txt")
    secured = proofs.sign(doc, key, created="2023-02-24T23:36:38Z")
    jcs, other = secured["proof"]
    assert jcs == proof and other["cryptosuite"] == proofs.RDFC_SUITE
    assert proofs.verify_proof(secured, jcs, PUBLIC).ok
    assert proofs.verify_proof_set(secured, PUBLIC).ok


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.__setitem__("name", "Alumni Credential!"),
        lambda d: d["credentialSubject"].__setitem__("id", "did:example:other"),
        lambda d: d["proof"].__setitem__("created", "2023-02-24T23:36:39Z"),
        lambda d: d["proof"].__setitem__("cryptosuite", "eddsa-rdfc-2022"),
        lambda d: d["proof"].__setitem__("proofValue", d["proof"]["proofValue"][:-2] + "11"),
        lambda d: d["proof"].__setitem__("@context", ["https://www.w3.org/ns/credentials/v2"]),
    ],
    ids=["field", "subject", "created", "cryptosuite", "proofValue", "proof-context"],
)
def test_published_vector_tampered_fails(change) -> None:
    doc = copy.deepcopy(signed("369f0f0"))
    change(doc)
    assert not proofs.verify_proof(doc, doc["proof"], PUBLIC).ok


def test_another_key_is_refused() -> None:
    doc = signed("4ced357")
    other = IssuerKey.generate().multikey
    result = proofs.verify_proof(doc, doc["proof"], other)
    assert not result.ok and "another key" in result.detail
