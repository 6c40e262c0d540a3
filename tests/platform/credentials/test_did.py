"""Issuer DIDs: did:web resolves where the method says, the DID document names the issuer's keys
under assertionMethod and its registry, and a verifier takes no key from a document that is not
the issuer's or from a method it does not list for assertions. No ledger here: signature-only
credentials of did:web issuers served by a loopback server."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from academy.credentials import proofs
from academy.credentials.did import (
    DID_CONTEXT_FILES,
    LEDGER_SERVICE_TYPE,
    DidError,
    LedgerBinding,
    did_web_for,
    did_web_url,
    method_id,
    parse_did_document,
    pinned_did_context,
)
from academy.credentials.fetch import FetchLimits
from academy.credentials.issuer import Issuer, now_utc
from academy.credentials.keys import IssuerKey, format_time
from academy.credentials.verify import CacheSources, OnlineSources, fill_cache, verify_credential
from pyld import jsonld

from .test_tampering import draft

LOOPBACK = FetchLimits(allow_private=True)
# sha256 of the context files as the npm packages did-context 3.1.1 and
# @digitalbazaar/multikey-context 2.0.1 ship them (contexts/did-v1.jsonld, multikey-v1.jsonld)
PUBLISHED = {
    "did-v1.jsonld": "62c1054bf404d6dd3a4b26b64f830fd72095f6a26edc4469908c94351352ce5f",
    "multikey-v1.jsonld": "c5f3806f8286920573221938917988a18a4cc5a09e968d29649613c7a1c2b1f6",
}


@pytest.mark.parametrize(
    ("did", "url"),
    [
        ("did:web:w3c-ccg.github.io", "https://w3c-ccg.github.io/.well-known/did.json"),
        ("did:web:w3c-ccg.github.io:user:alice", "https://w3c-ccg.github.io/user/alice/did.json"),
        ("did:web:example.com%3A3000:user:alice", "https://example.com:3000/user/alice/did.json"),
        (
            "did:web:academy.example:services:academy:api:credentials:issuers:uni",
            "https://academy.example/services/academy/api/credentials/issuers/uni/did.json",
        ),
    ],
)
def test_did_web_resolves_where_the_method_says(did: str, url: str) -> None:
    assert did_web_url(did) == url
    assert did_web_for(url.removesuffix("/did.json").replace("/.well-known", "")) == did


def test_plain_http_only_for_loopback_and_only_when_asked() -> None:
    local = "did:web:127.0.0.1%3A8000:issuers:a"
    assert did_web_url(local) == "https://127.0.0.1:8000/issuers/a/did.json"
    assert did_web_url(local, http_loopback=True) == "http://127.0.0.1:8000/issuers/a/did.json"
    assert did_web_url("did:web:localhost%3A9", http_loopback=True).startswith("http://")
    for remote in ("did:web:academy.example:a", "did:web:10.0.0.1%3A80:a"):
        assert did_web_url(remote, http_loopback=True).startswith("https://"), remote


@pytest.mark.parametrize(
    "bad", ["did:key:z6Mk", "did:web:", "did:web:host:a::b", "did:web:host#key", "did:web:h/x"]
)
def test_a_malformed_did_web_is_one_error(bad: str) -> None:
    with pytest.raises(DidError):
        did_web_url(bad)


def test_the_did_contexts_are_the_published_bytes() -> None:
    folder = Path(__file__).parents[3] / "platform/academy/credentials/data/contexts"
    for name, digest in PUBLISHED.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    assert set(DID_CONTEXT_FILES.values()) == set(PUBLISHED)


def _expanded_terms(doc: dict) -> set[str]:
    """Every property IRI of ``doc`` expanded against the pinned contexts (nothing fetched)."""

    def loader(url: str, options: dict | None = None) -> dict:
        return {"contextUrl": None, "documentUrl": url, "document": pinned_did_context(url)}

    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not key.startswith("@"):
                    found.add(key)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(jsonld.expand(copy.deepcopy(doc), {"documentLoader": loader}))
    return found


def test_the_did_document_is_json_ld_with_no_term_left_undefined() -> None:
    issuer = Issuer(did_web_for("https://academy.example/issuers/ld"), "LD", "https://x.example")
    k1 = issuer.add_key(now_utc() - dt.timedelta(days=2))
    issuer.add_key(now_utc() - dt.timedelta(days=1))
    issuer.revoke_key(k1.multikey, now_utc())
    ledger = LedgerBinding(7431, "0x" + "ab" * 32, "0x" + "12" * 20)
    from academy.credentials.did import did_document

    doc = did_document(issuer.id, issuer.history, ledger)
    sec, did_ns = "https://w3id.org/security#", "https://www.w3.org/ns/did#"
    assert _expanded_terms(doc) == {
        sec + "verificationMethod", sec + "assertionMethod", sec + "controller",
        sec + "publicKeyMultibase", sec + "expiration", sec + "revoked", did_ns + "service",
        did_ns + "serviceEndpoint",
    }  # fmt: skip
    assert doc["service"][0]["type"] == LEDGER_SERVICE_TYPE
    parsed = parse_did_document(doc, issuer.id)
    assert parsed.ledger == ledger
    assert parsed.keys.find(k1.multikey).revoked_at is not None
    assert parsed.assertion_key(method_id(issuer.id, k1.multikey)) == k1.multikey


@pytest.fixture
def served(status_server) -> tuple[Issuer, IssuerKey]:
    """A did:web issuer on the loopback server, one key, no ledger, its document published."""
    base = f"{status_server.base_url}/did-{len(status_server.docs)}"
    issuer = Issuer(did_web_for(base), "Did Web Academy", f"{base}/status")
    key = issuer.add_key(now_utc() - dt.timedelta(minutes=1))
    publish(status_server, issuer, issuer.did_document())
    for purpose in ("revocation", "suspension"):
        status_server.publish(issuer.lists[purpose].url, issuer.status_list(purpose))
    return issuer, key


def publish(status_server, issuer: Issuer, doc: dict) -> None:
    status_server.publish(did_web_url(issuer.id, http_loopback=True), doc)


def both(doc: dict, tmp_path: Path, key: str | None = None) -> list:
    """The reports online and from a cache filled online."""
    cache = tmp_path / f"cache-{len(list(tmp_path.iterdir()))}"
    fill_cache(cache, [doc], None, limits=LOOPBACK, did_web_http=True)
    online = OnlineSources(None, limits=LOOPBACK, did_web_http=True)
    return [verify_credential(doc, s, key=key) for s in (online, CacheSources(cache))]


def test_a_did_web_credential_verifies_against_its_document(served, tmp_path) -> None:
    issuer, _key = served
    doc = issuer.issue([draft(issuer, 1)])[0]
    for report in both(doc, tmp_path):
        assert report.verdict == "valid", report.to_json()
        assert "DID document" in report.check("issuer key").detail


def test_a_key_outside_assertion_method_signs_nothing(served, status_server, tmp_path) -> None:
    """A key the document lists as a verification method but not for assertions."""
    issuer, _key = served
    other = IssuerKey.generate()
    published = issuer.did_document()
    published["verificationMethod"].append(
        {"id": method_id(issuer.id, other.multikey), "type": "Multikey",
         "controller": issuer.id, "publicKeyMultibase": other.multikey}
    )  # fmt: skip
    publish(status_server, issuer, published)
    doc = proofs.sign(
        draft(issuer, 2), other, format_time(now_utc()), method_id(issuer.id, other.multikey)
    )
    for report in both(doc, tmp_path) + both(doc, tmp_path, key=other.multikey):
        assert report.verdict == "invalid"
        assert "not listed under the issuer's assertionMethod" in report.check("issuer key").detail


def test_a_document_of_another_did_is_no_document(served, status_server, tmp_path) -> None:
    """The server at the issuer's address answers with a document of another DID, or one that
    lists a key controlled by another DID: neither speaks for the issuer."""
    issuer, _key = served
    doc = issuer.issue([draft(issuer, 3)])[0]
    other_id = {**issuer.did_document(), "id": "did:web:evil.example"}
    foreign = issuer.did_document()
    foreign["verificationMethod"][0]["controller"] = "did:web:evil.example"
    for published in (other_id, foreign):
        publish(status_server, issuer, published)
        online = verify_credential(doc, OnlineSources(None, limits=LOOPBACK, did_web_http=True))
        assert online.verdict == "invalid"
        assert "DID document" in online.check("issuer key").detail
        with pytest.raises(Exception, match="unusable"):
            fill_cache(tmp_path / "c", [doc], None, limits=LOOPBACK, did_web_http=True)


def test_a_key_the_document_revokes_is_refused_without_an_anchor(
    served, status_server, tmp_path
) -> None:
    """No ledger at all: the DID document's ``revoked`` alone refuses the key, --key or not."""
    issuer, key = served
    doc = issuer.issue([draft(issuer, 4)], created=now_utc() - dt.timedelta(seconds=20))[0]
    issuer.revoke_key(key.multikey, now_utc() - dt.timedelta(seconds=10))
    issuer.add_key(now_utc() - dt.timedelta(seconds=10))
    publish(status_server, issuer, issuer.did_document())
    for purpose in ("revocation", "suspension"):
        status_server.publish(issuer.lists[purpose].url, issuer.status_list(purpose))
    for report in both(doc, tmp_path) + both(doc, tmp_path, key=key.multikey):
        assert report.verdict == "invalid", report.to_json()
        assert "revoked" in report.check("issuer key").detail


def test_an_anchor_of_a_did_key_issuer_needs_a_pinned_registry(tmp_path) -> None:
    """A did:key has no document to name a registry: caching its anchored credential says to
    pin one, and verifying it checks no registry the anchor alone names."""
    key = IssuerKey.generate()
    issuer = Issuer(f"did:key:{key.multikey}", "Demo", "https://status.invalid/demo")
    issuer.add_key(now_utc() - dt.timedelta(minutes=1), key=key)
    doc = issuer.issue([draft(issuer, 5)])[0]
    doc["proof"] = [
        doc["proof"] if isinstance(doc["proof"], dict) else doc["proof"][0],
        {"type": "LedgerAnchorProof", "proofPurpose": "assertionMethod",
         "created": format_time(now_utc()), "merkleRoot": "00" * 32, "path": [],
         "ledger": {"chainId": 1, "genesisHash": "0x" + "00" * 32,
                    "registry": "0x" + "11" * 20, "transaction": "0x" + "22" * 32,
                    "blockNumber": 1, "blockHash": "0x" + "33" * 32}},
    ]  # fmt: skip
    with pytest.raises(Exception, match="--registry"):
        fill_cache(tmp_path / "c", [doc], "http://127.0.0.1:9", limits=LOOPBACK)
    report = verify_credential(doc, CacheSources(tmp_path / "empty"), key=key.multikey)
    assert "ledger anchor" in report.failed
    assert "--registry" in report.check("ledger anchor").detail
    assert json.dumps(report.to_json())  # the report stays serialisable


def _shapes(did: str, good: dict) -> list:
    """DID documents of every wrong shape a host could serve."""
    vm = good["verificationMethod"][0]
    return [
        None, [], "did", 7, {}, {"id": did, "verificationMethod": {}},
        {"id": did, "verificationMethod": [vm, vm]},
        {"id": did, "verificationMethod": [{**vm, "publicKeyMultibase": "z6Mk"}]},
        {"id": did, "verificationMethod": [{**vm, "publicKeyMultibase": 5}]},
        {"id": did, "verificationMethod": [{**vm, "expires": "yesterday"}]},
        {"id": did, "verificationMethod": [{**vm, "revoked": 17}]},
        {"id": did, "assertionMethod": "x", "verificationMethod": []},
        {"id": did, "service": [{"type": LEDGER_SERVICE_TYPE, "serviceEndpoint": {"a": 1}}]},
        {"id": did, "service": [{"type": LEDGER_SERVICE_TYPE,
                                 "serviceEndpoint": "urn:chainacademy:ledger:1:0x:0x12"}]},
    ]  # fmt: skip


def test_a_did_document_of_any_shape_is_one_error_never_a_crash(served, status_server) -> None:
    """Each shape is a DidError when read, and a failed check when verifying, online."""
    issuer, _key = served
    doc = issuer.issue([draft(issuer, 6)])[0]
    for shape in _shapes(issuer.id, issuer.did_document()):
        with pytest.raises(DidError):
            parse_did_document(shape, issuer.id)
        publish(status_server, issuer, shape if shape is not None else {})
        report = verify_credential(doc, OnlineSources(None, limits=LOOPBACK, did_web_http=True))
        assert report.verdict == "invalid", shape
        assert "DID document" in report.check("issuer key").detail, (shape, report.to_json())
