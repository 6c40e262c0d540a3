"""Bitstring Status Lists (W3C Bitstring Status List v1.0): revocation and suspension.

One list is a bitstring of at least 131,072 entries (16 KiB), so a verifier who fetches it learns
nothing about which of the many credentials it holds the status of (herd privacy); indexes are
handed out at random for the same reason. Bit 0 is the left-most bit of the first byte. The list
travels GZIP-compressed, base64url-encoded without padding, with the multibase prefix ``u``,
inside a ``BitstringStatusListCredential`` that the issuer signs like any credential.
"""

from __future__ import annotations

import base64
import gzip
import secrets
import zlib
from typing import Any

from .credential import VC_V2_CONTEXT

MIN_ENTRIES = 131_072
MAX_ENTRIES = 16 * 1024 * 1024
"""The largest list a verifier decodes (2 MiB of bits): a few KiB of GZIP can expand to
gigabytes, so decompression stops there."""
PURPOSES = ("revocation", "suspension")


class StatusListError(ValueError):
    """A status list that cannot be decoded or used; the message says why."""


class StatusList:
    """A bitstring with one bit per credential."""

    def __init__(self, size: int = MIN_ENTRIES, bits: bytes | None = None) -> None:
        if size < MIN_ENTRIES or size % 8:
            raise StatusListError(f"a status list has at least {MIN_ENTRIES} entries, in bytes")
        self.size = size
        self.bits = bytearray(bits if bits is not None else size // 8)
        if len(self.bits) * 8 != size:
            raise StatusListError("status list bits do not match its size")

    def get(self, index: int) -> bool:
        self._check(index)
        return bool(self.bits[index >> 3] & (0x80 >> (index & 7)))

    def set(self, index: int, value: bool) -> None:
        self._check(index)
        mask = 0x80 >> (index & 7)
        if value:
            self.bits[index >> 3] |= mask
        else:
            self.bits[index >> 3] &= ~mask & 0xFF

    def _check(self, index: int) -> None:
        if not 0 <= index < self.size:
            raise StatusListError(f"status index {index} is outside the list (0..{self.size - 1})")

    def encode(self) -> str:
        """Multibase base64url (no padding) of the GZIP of the bits; mtime 0 keeps it stable."""
        packed = gzip.compress(bytes(self.bits), compresslevel=9, mtime=0)
        return "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode()

    @classmethod
    def decode(cls, encoded: Any) -> StatusList:
        if not isinstance(encoded, str) or not encoded.startswith("u"):
            raise StatusListError("encodedList must be multibase base64url (start with 'u')")
        body = encoded[1:]
        try:
            packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # GZIP framing
            bits = inflate.decompress(packed, MAX_ENTRIES // 8 + 1)
        except (ValueError, zlib.error) as exc:
            raise StatusListError(f"encodedList is not GZIP in base64url: {exc}") from exc
        if len(bits) * 8 > MAX_ENTRIES:
            raise StatusListError(
                f"status list has more than {MAX_ENTRIES} entries: refused (decompression capped)"
            )
        if not inflate.eof or inflate.unused_data:
            raise StatusListError("encodedList is not one whole GZIP stream in base64url")
        if len(bits) * 8 < MIN_ENTRIES:
            raise StatusListError(
                f"status list has {len(bits) * 8} entries; at least {MIN_ENTRIES} are required"
            )
        return cls(len(bits) * 8, bits)


def random_free_index(taken: set[int], size: int = MIN_ENTRIES) -> int:
    """A random index not yet handed out (random so that neighbours say nothing of each other)."""
    if len(taken) >= size:
        raise StatusListError("the status list is full: open a new list")
    while True:
        index = secrets.randbelow(size)
        if index not in taken:
            return index


def status_entry(list_url: str, index: int, purpose: str) -> dict[str, Any]:
    """The ``credentialStatus`` entry pointing at one bit."""
    if purpose not in PURPOSES:
        raise StatusListError(f"status purpose {purpose!r}: use one of {', '.join(PURPOSES)}")
    return {
        "id": f"{list_url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": purpose,
        "statusListIndex": str(index),
        "statusListCredential": list_url,
    }


def status_list_credential(
    list_url: str, issuer_id: str, purpose: str, status: StatusList, valid_from: str
) -> dict[str, Any]:
    """The unsigned ``BitstringStatusListCredential`` for a list (sign it with proofs.sign)."""
    return {
        "@context": [VC_V2_CONTEXT],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer_id,
        "validFrom": valid_from,
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "encodedList": status.encode(),
        },
    }
