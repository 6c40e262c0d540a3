"""The small parts: key history rules, key encryption, status list encoding, Merkle paths."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
from pathlib import Path

import pytest
from academy.credentials.keys import (
    IssuerKey,
    KeyFormatError,
    KeyHistory,
    KeyRecord,
    decode_multikey,
    did_key,
    multikey_from_reference,
)
from academy.credentials.merkle import MerkleTree, leaf_hash, root_from_path
from academy.credentials.statuslist import MIN_ENTRIES, StatusList, StatusListError

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def test_key_encrypted_at_rest_round_trips_only_with_the_passphrase() -> None:
    key = IssuerKey.generate()
    pem = key.encrypt(b"correct horse")
    assert "ENCRYPTED PRIVATE KEY" in pem and key.secret_multibase() not in pem
    assert IssuerKey.decrypt(pem, b"correct horse").multikey == key.multikey
    with pytest.raises(KeyFormatError, match="passphrase"):
        IssuerKey.decrypt(pem, b"wrong")


def test_multikey_references() -> None:
    key = IssuerKey.generate()
    mk = key.multikey
    assert mk.startswith("z6Mk") and len(decode_multikey(mk)) == 32
    for ref in (mk, did_key(mk), key.verification_method, f"https://x.example/issuer#{mk}"):
        assert multikey_from_reference(ref) == mk
    other = IssuerKey.generate().multikey
    with pytest.raises(KeyFormatError):
        multikey_from_reference(f"did:key:{mk}#{other}")
    with pytest.raises(KeyFormatError):
        multikey_from_reference("z" + "1" * 40)


def test_rotation_and_revocation_rules() -> None:
    h = KeyHistory()
    a, b = IssuerKey.generate(), IssuerKey.generate()
    h.rotate(KeyRecord(a.multikey, at(0), encrypted_private="x"), at(0))
    h.rotate(KeyRecord(b.multikey, at(0), encrypted_private="y"), at(10))
    assert h.active(at(5)).multikey == a.multikey and h.active(at(11)).multikey == b.multikey
    assert h.check(a.multikey, at(5), None).ok
    assert "rotated out" in h.check(a.multikey, at(10), None).detail
    assert "before the key's period" in h.check(b.multikey, at(9), None).detail
    h.revoke(b.multikey, at(20))
    assert h.check(b.multikey, at(15), at(16)).ok  # anchored before the compromise
    assert "only anchored" in h.check(b.multikey, at(15), at(25)).detail
    assert "no ledger anchor" in h.check(b.multikey, at(15), None).detail
    assert "before this signature" in h.check(b.multikey, at(21), at(22)).detail
    assert h.active(at(21)) is None


def test_status_list_bits_and_encoding() -> None:
    lst = StatusList()
    assert lst.size == MIN_ENTRIES
    for i in (0, 7, 8, 94567, MIN_ENTRIES - 1):
        lst.set(i, True)
    encoded = lst.encode()
    assert encoded.startswith("u") and "=" not in encoded
    raw = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert raw[0] == 0b1000_0001 and raw[1] == 0b1000_0000  # bit 0 is the left-most bit
    back = StatusList.decode(encoded)
    assert [i for i in (0, 1, 7, 8, 9, 94567, MIN_ENTRIES - 1) if back.get(i)] == [
        0, 7, 8, 94567, MIN_ENTRIES - 1
    ]  # fmt: skip
    back.set(7, False)
    assert not back.get(7)
    small = "u" + base64.urlsafe_b64encode(gzip.compress(bytes(1024))).decode().rstrip("=")
    with pytest.raises(StatusListError, match="at least"):
        StatusList.decode(small)
    with pytest.raises(StatusListError):
        StatusList.decode("uNOTGZIP")
    with pytest.raises(StatusListError):
        lst.get(MIN_ENTRIES)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 100])
def test_every_leaf_proves_inclusion(n: int) -> None:
    leaves = [leaf_hash(bytes([i % 256, i // 256])) for i in range(n)]
    tree = MerkleTree(leaves)
    for i, leaf in enumerate(leaves):
        assert root_from_path(leaf, tree.path(i)) == tree.root
    if n > 1:
        assert root_from_path(leaves[0], tree.path(1)) != tree.root


def test_leaf_and_node_hashes_are_separated() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    tree = MerkleTree([a, b])
    assert tree.root != leaf_hash(a + b)
    with pytest.raises(ValueError):
        root_from_path(a, [{"up": b.hex()}])


def test_sources_check_each_status_list_once() -> None:
    from academy.credentials.verify import CacheSources, OnlineSources

    assert CacheSources(Path("/nonexistent")).memo == {}
    assert OnlineSources(None).memo == {}


def test_libsodium_signatures_are_openssls() -> None:
    """Credentials are signed and checked through libsodium (faster); Ed25519 is deterministic,
    so every signature must be byte for byte OpenSSL's, and both must accept and refuse alike."""
    import os

    from academy.credentials.keys import verify_signature
    from cryptography.exceptions import InvalidSignature

    for size in (0, 1, 64, 1000):
        key = IssuerKey.generate()
        msg = os.urandom(size)
        sig = key.sign(msg)
        assert sig == key.private.sign(msg)
        assert verify_signature(key.multikey, sig, msg)
        for bad_sig, bad_msg in (
            (bytes([sig[0] ^ 1]) + sig[1:], msg),
            (sig[:63] + bytes([sig[63] ^ 0x40]), msg),
            (sig, msg + b"x"),
            (sig[:32], msg),
        ):
            assert not verify_signature(key.multikey, bad_sig, bad_msg)
            with pytest.raises((InvalidSignature, ValueError)):
                key.private.public_key().verify(bad_sig, bad_msg)
        assert not verify_signature(IssuerKey.generate().multikey, sig, msg)


def test_schema_problems_name_the_member_at_fault() -> None:
    from academy.credentials.credential import build_credential, schema_problem
    from academy.credentials.statuslist import status_entry

    doc = build_credential(
        issuer={"id": "https://issuer.example", "name": "Issuer"},
        subject_id="urn:uuid:1",
        identity="learner@example.org",
        achievement={"id": "https://c.example", "name": "C", "description": "d", "criteria": "c"},
        evidence=[],
        valid_from="2026-01-01T00:00:00Z",
        status=[status_entry("https://issuer.example/s/1", 7, "revocation")],
    )
    assert schema_problem(doc) is None
    cases = {
        "credentialStatus": ([doc["credentialStatus"], {"type": "x"}], "credentialStatus[1]: must"),
        "issuer": (5, "issuer: must be object or string"),
        "proof": ([{"type": 1}], "proof[0].type: must be string"),
        "credentialSubject": ([{}], "credentialSubject[0]: must contain at least 1 properties"),
    }
    for member, (value, expected) in cases.items():
        problem = schema_problem({**doc, member: value})
        assert problem and problem.startswith(expected), (member, problem)
