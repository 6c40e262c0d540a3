"""Institution keys: Ed25519, published as Multikey / did:key, rotated with validity periods.

A verifier must be able to tell, years later, that the key behind a signature belonged to the
issuer *when it signed*. So an issuer never has one key but a history: each key has a validity
period (``valid_from`` .. ``valid_until``) and may be revoked (compromised) at some instant.
Rotation closes the old key's period and opens the new one; credentials signed inside a period
stay valid. Revocation is harsher: whoever stole a key can backdate ``created``, so after a
revocation only signatures that a ledger anchor dates before the revocation are trusted.

Public keys travel as Multikey strings (``z6Mk...``: base58btc of the multicodec ``ed25519-pub``
prefix 0xed01 and the 32 key bytes), which is also the method-specific id of a ``did:key``.
Private keys are only ever stored encrypted (PKCS#8 with the strongest scheme `cryptography`
offers, scrypt + AES-256) under a passphrase that lives outside the database.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

import base58
import nacl.bindings as nacl_bindings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.exceptions import BadSignatureError

ED25519_PUB_PREFIX = b"\xed\x01"
ED25519_PRIV_PREFIX = b"\x80\x26"


class KeyFormatError(ValueError):
    """A key string is not an Ed25519 Multikey / did:key / multibase secret; says which."""


# -- multibase ------------------------------------------------------------------------------------


_B58 = base58.BITCOIN_ALPHABET.decode()
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_B58_PAIRS = [a + b for a in _B58 for b in _B58]  # two digits per big-integer division


def b58btc(data: bytes) -> str:
    """Multibase base58btc (prefix ``z``). Same output as the `base58` package, in half the
    big-integer divisions: every signature of every credential is encoded with it."""
    n = int.from_bytes(data, "big")
    digits: list[str] = []
    while n:
        n, r = divmod(n, 3364)
        digits.append(_B58_PAIRS[r])
    text = "".join(reversed(digits)).lstrip("1")
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "z" + "1" * zeros + text


def from_b58btc(text: str, what: str = "value") -> bytes:
    if not isinstance(text, str) or not text.startswith("z") or len(text) < 2:
        raise KeyFormatError(f"{what} must be multibase base58btc (start with 'z')")
    body = text[1:]
    n = 0
    try:
        for c in body:
            n = n * 58 + _B58_INDEX[c]
    except KeyError as exc:
        raise KeyFormatError(f"{what} is not valid base58btc: bad character {exc}") from None
    zeros = len(body) - len(body.lstrip("1"))
    return b"\0" * zeros + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")


# -- public keys ----------------------------------------------------------------------------------


def public_multikey(public_key: bytes | Ed25519PublicKey) -> str:
    raw = public_key if isinstance(public_key, bytes) else raw_public(public_key)
    if len(raw) != 32:
        raise KeyFormatError("an Ed25519 public key has 32 bytes")
    return b58btc(ED25519_PUB_PREFIX + raw)


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@functools.lru_cache(maxsize=1024)
def decode_multikey(multikey: str) -> bytes:
    """The 32 raw public key bytes of an Ed25519 Multikey."""
    raw = from_b58btc(multikey, "public key")
    if raw[:2] != ED25519_PUB_PREFIX or len(raw) != 34:
        raise KeyFormatError(
            "public key is not an Ed25519 Multikey (expected a 'z6Mk...' string of 48 characters)"
        )
    return raw[2:]


def did_key(multikey: str) -> str:
    return f"did:key:{multikey}"


def verification_method_id(multikey: str) -> str:
    """The did:key verification method URL, ``did:key:z6Mk...#z6Mk...``."""
    return f"did:key:{multikey}#{multikey}"


def multikey_from_reference(reference: str) -> str:
    """The Multikey named by a key reference: a Multikey, a did:key (with or without fragment), or
    any URL whose fragment is the Multikey (``https://issuer.example/profile#z6Mk...``)."""
    ref = (reference or "").strip()
    candidate = ref
    if "#" in ref:
        candidate = ref.rsplit("#", 1)[1]
    elif ref.startswith("did:key:"):
        candidate = ref[len("did:key:") :]
    decode_multikey(candidate)
    if ref.startswith("did:key:"):
        base = ref[len("did:key:") :].split("#", 1)[0]
        if base != candidate:
            raise KeyFormatError("did:key fragment names another key than the DID itself")
    return candidate


def verify_signature(multikey: str, signature: bytes, data: bytes) -> bool:
    """Ed25519 (RFC 8032) verification through libsodium, which checks a signature in half the
    time OpenSSL takes; it is the largest single cost of verifying a credential. libsodium is also
    the stricter of the two (it refuses small-order keys and non-canonical encodings)."""
    if len(signature) != 64:
        return False
    try:
        nacl_bindings.crypto_sign_open(signature + data, decode_multikey(multikey))
    except (BadSignatureError, ValueError):
        return False
    return True


# -- private keys ---------------------------------------------------------------------------------


class IssuerKey:
    """An Ed25519 signing key and its public Multikey."""

    __slots__ = ("private", "multikey", "_sodium")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private
        self.multikey = public_multikey(private.public_key())
        self._sodium = nacl_bindings.crypto_sign_seed_keypair(self._seed())[1]

    def _seed(self) -> bytes:
        """The 32 secret bytes of the key."""
        return self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @classmethod
    def generate(cls) -> IssuerKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_secret_multibase(cls, text: str) -> IssuerKey:
        """From a multibase ``ed25519-priv`` secret (the form the W3C test vectors publish)."""
        raw = from_b58btc(text, "secret key")
        if raw[:2] != ED25519_PRIV_PREFIX or len(raw) != 34:
            raise KeyFormatError("secret key is not a multibase Ed25519 private key ('z3u2...')")
        return cls(Ed25519PrivateKey.from_private_bytes(raw[2:]))

    def secret_multibase(self) -> str:
        return b58btc(ED25519_PRIV_PREFIX + self._seed())

    def sign(self, data: bytes) -> bytes:
        """The Ed25519 signature of ``data`` (deterministic: the same bytes OpenSSL gives, from
        libsodium, which signs faster)."""
        return nacl_bindings.crypto_sign(data, self._sodium)[:64]

    @property
    def verification_method(self) -> str:
        return verification_method_id(self.multikey)

    def encrypt(self, passphrase: bytes) -> str:
        """PKCS#8 PEM encrypted under ``passphrase`` (what is stored at rest)."""
        if not passphrase:
            raise ValueError("a key passphrase is required to store a private key")
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        ).decode()

    @classmethod
    def decrypt(cls, pem: str, passphrase: bytes) -> IssuerKey:
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=passphrase)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(
                "cannot decrypt the issuer key: wrong passphrase (ACADEMY_CREDENTIALS_PASSPHRASE) "
                "or damaged key"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFormatError("the stored issuer key is not an Ed25519 key")
        return cls(key)


# -- key history ----------------------------------------------------------------------------------


def parse_time(value: str) -> dt.datetime:
    """An XML Schema dateTime with a time zone (what VC dates are), as an aware datetime."""
    if not isinstance(value, str):
        raise ValueError("a date-time must be a string")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"date-time {value!r} has no time zone: add 'Z' or an offset")
    return when


@functools.lru_cache(maxsize=4096)
def format_time(when: dt.datetime) -> str:
    """VC form of an instant (whole seconds, UTC). Cached: a batch repeats the same few dates in
    every verification report."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class KeyRecord:
    """One key in an issuer's history."""

    multikey: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    encrypted_private: str | None = field(default=None, repr=False)


@dataclass
class KeyVerdict:
    ok: bool
    detail: str


class KeyHistory:
    """All keys an issuer ever had, and the one rule that says whether a key could sign then."""

    def __init__(self, records: list[KeyRecord] | None = None) -> None:
        self.records: list[KeyRecord] = list(records or [])

    def find(self, multikey: str) -> KeyRecord | None:
        for r in self.records:
            if r.multikey == multikey:
                return r
        return None

    def active(self, at: dt.datetime) -> KeyRecord | None:
        """The key that signs at ``at`` (the newest one whose period covers it)."""
        live = [
            r
            for r in self.records
            if r.valid_from <= at
            and (r.valid_until is None or at < r.valid_until)
            and (r.revoked_at is None or at < r.revoked_at)
            and r.encrypted_private
        ]
        return max(live, key=lambda r: r.valid_from) if live else None

    def add(self, record: KeyRecord) -> None:
        if self.find(record.multikey):
            raise ValueError(f"key {record.multikey} is already in the issuer's history")
        self.records.append(record)

    def rotate(self, new: KeyRecord, at: dt.datetime) -> KeyRecord | None:
        """Close the current key's period at ``at`` and add ``new`` (valid from ``at``)."""
        current = self.active(at)
        if current is not None:
            current.valid_until = at
        new.valid_from = at
        self.add(new)
        return current

    def revoke(self, multikey: str, at: dt.datetime) -> KeyRecord:
        record = self.find(multikey)
        if record is None:
            raise ValueError(f"key {multikey} is not one of the issuer's keys")
        record.revoked_at = at
        if record.valid_until is None or record.valid_until > at:
            record.valid_until = at
        return record

    def check(
        self, multikey: str, signed_at: dt.datetime, anchored_at: dt.datetime | None
    ) -> KeyVerdict:
        """Was ``multikey`` the issuer's key, valid at ``signed_at``? ``anchored_at`` is when a
        ledger first saw the credential (an upper bound on its real signing time), if anchored."""
        r = self.find(multikey)
        if r is None:
            return KeyVerdict(False, f"key {multikey[:16]}... is not one of the issuer's keys")
        if r.revoked_at is not None:
            if signed_at >= r.revoked_at:
                return KeyVerdict(
                    False, f"key was revoked at {format_time(r.revoked_at)}, before this signature"
                )
            if anchored_at is None:
                return KeyVerdict(
                    False,
                    f"key was revoked at {format_time(r.revoked_at)} and no ledger anchor shows "
                    "the signature is older than that",
                )
            if anchored_at >= r.revoked_at:
                return KeyVerdict(
                    False,
                    f"key was revoked at {format_time(r.revoked_at)}; the credential was only "
                    f"anchored at {format_time(anchored_at)}",
                )
        if signed_at < r.valid_from:
            return KeyVerdict(
                False, f"signed {format_time(signed_at)}, before the key's period began"
            )
        if r.valid_until is not None and signed_at >= r.valid_until:
            return KeyVerdict(
                False,
                f"signed {format_time(signed_at)}, after the key was rotated out "
                f"({format_time(r.valid_until)})",
            )
        until = format_time(r.valid_until) if r.valid_until else "now"
        return KeyVerdict(True, f"issuer key valid {format_time(r.valid_from)} .. {until}")
