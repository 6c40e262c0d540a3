"""The batch Merkle tree: one ledger transaction anchors any number of credentials.

Hashing follows RFC 6962 (Certificate Transparency) so a leaf can never pass for an inner node:
leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right). A level with an odd count
carries its last node up unchanged (no duplication, so no two trees share a root by padding).
An inclusion path lists, bottom-up, each sibling with the side it sits on; the order of the
pairs and the sides are both part of the proof, so a reordered or flipped path fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

LEAF, NODE = b"\x00", b"\x01"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE + left + right).digest()


class MerkleTree:
    """A tree over leaf hashes (already ``leaf_hash``-ed) with every level kept for paths."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise ValueError("a batch needs at least one credential")
        sha = hashlib.sha256
        levels: list[list[bytes]] = [list(leaves)]
        while len(levels[-1]) > 1:
            below = levels[-1]
            up = [sha(NODE + below[i] + below[i + 1]).digest() for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                up.append(below[-1])
            levels.append(up)
        self.levels = levels

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def __len__(self) -> int:
        return len(self.levels[0])

    def path(self, index: int) -> list[dict[str, str]]:
        """Siblings from leaf to root: ``[{"left": hex} | {"right": hex}, ...]``."""
        if not 0 <= index < len(self):
            raise IndexError(f"leaf {index} is not in a tree of {len(self)}")
        out: list[dict[str, str]] = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                side = "left" if sibling < index else "right"
                out.append({side: level[sibling].hex()})
            index //= 2
        return out


def root_from_path(leaf: bytes, path: Any) -> bytes:
    """The root a path leads to from ``leaf``; ValueError when the path is malformed."""
    if not isinstance(path, list):
        raise ValueError("the Merkle path must be a list")
    h = leaf
    for step in path:
        if not isinstance(step, dict) or len(step) != 1:
            raise ValueError("each Merkle path step is one {'left'|'right': hex} object")
        ((side, value),) = step.items()
        try:
            sibling = bytes.fromhex(value)
        except (TypeError, ValueError) as exc:
            raise ValueError("a Merkle path sibling is not hex") from exc
        if len(sibling) != 32 or side not in ("left", "right"):
            raise ValueError("a Merkle path sibling must be 32 bytes on the left or right")
        h = node_hash(sibling, h) if side == "left" else node_hash(h, sibling)
    return h
