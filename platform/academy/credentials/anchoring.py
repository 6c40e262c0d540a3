"""Issuing a batch: sign each credential, build the batch's Merkle tree, anchor its root on the
ledger once, and give every credential its inclusion path as a second proof (a proof set).

The leaf of a credential is the SHA-256 of the JCS form of the credential *with* its signature
proof, so the anchor also fixes which signature was issued: a proof copied from another credential
fails the signature check, and a credential re-signed later has another leaf and no anchor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .jcs import canonicalize
from .keys import IssuerKey
from .merkle import MerkleTree, leaf_hash
from .proofs import proofs_of, sign, with_proofs
from .workers import batch_signing_hashes

ANCHOR_PROOF_TYPE = "LedgerAnchorProof"


@dataclass
class Anchor:
    """Where a batch root landed: the ledger's identity and the anchoring transaction."""

    chain_id: int
    genesis_hash: str
    registry: str
    transaction: str
    block_number: int
    block_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "chainId": self.chain_id,
            "genesisHash": self.genesis_hash,
            "registry": self.registry,
            "transaction": self.transaction,
            "blockNumber": self.block_number,
            "blockHash": self.block_hash,
        }


def is_anchor_proof(proof: dict[str, Any]) -> bool:
    return proof.get("type") == ANCHOR_PROOF_TYPE


def leaf_of(document: dict[str, Any]) -> bytes:
    """The Merkle leaf of a credential: its proofs other than anchoring proofs are kept."""
    kept = [p for p in proofs_of(document) if not is_anchor_proof(p)]
    body = with_proofs(document, kept)
    return leaf_hash(hashlib.sha256(canonicalize(body)).digest())


def sign_all(
    documents: Sequence[dict[str, Any]],
    key: IssuerKey,
    created: str,
    verification_method: str | None = None,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """Each document signed by ``key``, its proof naming ``verification_method`` (the key as a
    method of the issuer's DID; a did:key of its own when None). ``workers``: processes that
    canonicalize the documents (:mod:`.workers`); the key signs here."""
    method = verification_method or key.verification_method
    hashes = batch_signing_hashes(documents, created, method, workers)
    return [
        sign(doc, key, created, method, hashes=doc_hashes)
        for doc, doc_hashes in zip(documents, hashes, strict=True)
    ]


def anchor_batch(
    signed: Sequence[dict[str, Any]],
    record_root: Callable[[bytes, int], Anchor],
    created: str,
) -> list[dict[str, Any]]:
    """Anchor ``signed`` credentials as one batch. ``record_root(root, count)`` writes the root
    to the ledger and says where; every credential gets its LedgerAnchorProof."""
    tree = MerkleTree([leaf_of(doc) for doc in signed])
    anchor = record_root(tree.root, len(tree)).to_json()
    root = tree.root.hex()
    return [
        with_proofs(doc, [*proofs_of(doc), anchor_proof(root, tree.path(i), anchor, created)])
        for i, doc in enumerate(signed)
    ]


def anchor_proof(
    root: str, path: list[dict[str, str]], anchor: dict[str, Any], created: str
) -> dict[str, Any]:
    """The LedgerAnchorProof of one credential of a batch."""
    return {
        "type": ANCHOR_PROOF_TYPE,
        "proofPurpose": "assertionMethod",
        "created": created,
        "merkleRoot": root,
        "path": path,
        "ledger": anchor,
    }
