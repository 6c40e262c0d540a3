"""Verify a credential: every check named, each with its outcome and why.

The checks, in order (the same in the CLI, the API and the web page):

- ``schema``: a VC 2.0 credential (OB 3.0 shape for an OpenBadgeCredential), pinned contexts only;
- ``dates``: inside ``validFrom`` .. ``validUntil``; the signature not dated in the future;
- ``signature``: one eddsa-jcs-2022 and one eddsa-rdfc-2022 proof, by one key, both verify
  (against ``--key`` when one is given); either missing or invalid fails it;
- ``issuer key``: the proofs name one of the issuer's own keys (a method of its DID, listed
  under ``assertionMethod`` in its DID document), and that key was valid when it signed (the
  ledger's key history; a key revoked before the ledger saw the credential does not count);
- ``merkle inclusion``: the credential's leaf and path lead to the batch root it names;
- ``ledger anchor``: that root is recorded for the issuer, in the named block, on the ledger and
  in the registry the issuer's DID document names (or the verifier pins with ``--registry``):
  never in a registry the unsigned anchor proof alone names, since anyone can deploy one;
- ``status``: the status list, signed by one of the issuer's own keys (never merely by the key
  the list names), says neither revoked nor suspended, and agrees with the status changes
  recorded on the ledger.

Without an anchor, the key records of the issuer's registry (read online and offline alike) and
its DID document still refuse a revoked or rotated-out key. Inputs are bounded (:mod:`.jcs`: size
and nesting depth; :mod:`.statuslist`: the decompressed list), each with its own error, so no
document can crash a verifier.

A check that cannot apply (a signature-only credential has no Merkle path) is ``n/a``, never a
silent pass. Where data comes from is a :class:`Sources`: :class:`OnlineSources` (the ledger's
JSON-RPC and the status list URLs, fetched within :class:`~.fetch.FetchLimits`) or
:class:`CacheSources` (a folder filled beforehand; no network call at all). Both feed the very same
checks.

A source may also judge the issuer (``known_issuer``): academy's own sources know which issuers
and keys academy holds. A credential that passes every check but whose issuer (or signing key) the
source does not know gets the verdict ``issuer_unknown``, never ``valid``: anyone can sign a
document with a key of their own and write any name into it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .anchoring import is_anchor_proof, leaf_of
from .credential import issuer_id_of, schema_problem, status_entries
from .did import DidError, IssuerDocument, did_web_url, parse_did_document
from .fetch import FetchError, FetchLimits, fetch_json
from .jcs import CanonicalizationError, bound_problem, loads
from .keys import (
    KeyFormatError,
    KeyHistory,
    format_time,
    multikey_from_reference,
    parse_time,
)
from .ledger import (
    PURPOSE_CODES,
    LedgerError,
    LedgerFacts,
    facts_from_bundle,
    fetch_ledger_bundle,
    issuer_tag,
    list_tag,
)
from .merkle import root_from_path
from .proofs import is_signature_proof, proofs_of, verify_proof_set
from .statuslist import StatusList, StatusListError

PASS, FAIL, NA = "pass", "fail", "n/a"
CHECKS = (
    "schema",
    "dates",
    "signature",
    "issuer key",
    "merkle inclusion",
    "ledger anchor",
    "status",
)
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass
class Check:
    name: str
    outcome: str
    detail: str


@dataclass
class Report:
    credential_id: str | None
    checks: list[Check] = field(default_factory=list)
    issuer_id: str | None = None
    issuer_known: bool | None = None
    """True: the verifier holds this issuer and its signing key; False: it does not (the name in
    the document is unverified); None: the sources do not judge issuers (the CLI)."""
    issuer_name: str | None = None
    """The issuer's name as the verifier holds it (only when ``issuer_known``)."""

    @property
    def ok(self) -> bool:
        return all(c.outcome != FAIL for c in self.checks)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.outcome == FAIL]

    @property
    def verdict(self) -> str:
        """``valid``, ``issuer_unknown`` (every check passed, but the verifier does not know
        who the issuer is), ``revoked``, ``suspended``, or ``invalid``."""
        if self.ok:
            return "issuer_unknown" if self.issuer_known is False else "valid"
        if self.failed == ["status"]:
            detail = self.check("status").detail
            for word in ("revoked", "suspended"):
                if detail.startswith(word):
                    return word
        return "invalid"

    def to_json(self) -> dict[str, Any]:
        return {
            "credential": self.credential_id,
            "verdict": self.verdict,
            "valid": self.verdict == "valid",
            "issuer": {"id": self.issuer_id, "known": self.issuer_known, "name": self.issuer_name},
            "checks": [c.__dict__ for c in self.checks],
        }


class SourceError(Exception):
    """Data a check needs is not available (offline and not cached, or unreachable)."""


class Sources(Protocol):
    offline: bool
    registry: str | None
    """A registry address the verifier pins itself (``--registry``); None: the issuer's DID
    document names it."""

    def ledger_facts(self, registry: str) -> LedgerFacts: ...

    def status_list(self, url: str) -> dict[str, Any]: ...

    def issuer_document(self, issuer_id: str) -> IssuerDocument | None: ...

    def trusted_genesis(self, registry: str) -> str | None: ...


def issuer_document_url(issuer_id: str, did_web_http: bool = False) -> str | None:
    """Where an issuer publishes its document: a did:web resolves to its did.json, an https
    issuer id is its own document; a did:key has none (the DID is the key)."""
    if issuer_id.startswith("did:web:"):
        return did_web_url(issuer_id, http_loopback=did_web_http)
    if issuer_id.startswith(("https://", "http://")):
        return issuer_id
    return None


def read_issuer_document(issuer_id: str, body: Any) -> IssuerDocument:
    try:
        return parse_did_document(body, issuer_id)
    except DidError as exc:
        raise SourceError(f"the issuer's document is unusable: {exc}") from exc


class OnlineSources:
    """Live data: the ledger through one node's JSON-RPC (its evidence is checked, not trusted),
    status lists and issuer DID documents from their URLs, fetched within ``limits`` (a deadline
    for the whole fetch, a size cap, few redirects, no private addresses unless allowed).
    ``did_web_http``: resolve a did:web of a loopback host over http (local demos and tests;
    any other host is always https). Results are kept for the life of this object."""

    offline = False

    def __init__(
        self,
        rpc_url: str | None,
        genesis: str | None = None,
        limits: FetchLimits | None = None,
        registry: str | None = None,
        did_web_http: bool = False,
    ) -> None:
        self.rpc_url = rpc_url
        self.genesis = genesis
        self.registry = registry
        self.did_web_http = did_web_http
        self.limits = limits or FetchLimits()
        self._facts: dict[str, LedgerFacts] = {}
        self._lists: dict[str, dict[str, Any]] = {}
        self._issuers: dict[str, IssuerDocument | SourceError | None] = {}
        self.issuer_bodies: dict[str, Any] = {}
        """The issuer documents as fetched (what ``fill_cache`` keeps)."""
        self.memo: dict[tuple, Any] = {}
        """Checked status lists, so a thousand credentials on one list check it once."""

    def ledger_facts(self, registry: str) -> LedgerFacts:
        if not self.rpc_url:
            raise LedgerError(
                "no ledger to ask: pass --rpc URL (a node of the academy ledger), or verify "
                "--offline with a filled cache"
            )
        if registry not in self._facts:
            self._facts[registry] = facts_from_bundle(fetch_ledger_bundle(self.rpc_url, registry))
        return self._facts[registry]

    def trusted_genesis(self, registry: str) -> str | None:
        """The genesis hash the verifier pins (--genesis); None: the issuer's document says."""
        return self.genesis

    def issuer_document(self, issuer_id: str) -> IssuerDocument | None:
        """The issuer's DID document (did:web resolved, an https id fetched); None for a
        did:key. SourceError when it should exist but cannot be had."""
        if issuer_id not in self._issuers:
            try:
                url = issuer_document_url(issuer_id, self.did_web_http)
                found: IssuerDocument | SourceError | None = None
                if url is not None:
                    self.issuer_bodies[issuer_id] = fetch_json(url, self.limits)
                    found = read_issuer_document(issuer_id, self.issuer_bodies[issuer_id])
            except (DidError, FetchError) as exc:
                found = SourceError(f"cannot resolve the issuer {issuer_id}: {exc}")
            except SourceError as exc:
                found = exc
            self._issuers[issuer_id] = found
        known = self._issuers[issuer_id]
        if isinstance(known, SourceError):
            raise known
        return known

    def issuer_keys(self, issuer_id: str) -> KeyHistory | None:
        """The keys the issuer's document lists (None: no usable document)."""
        try:
            doc = self.issuer_document(issuer_id)
        except SourceError:
            return None
        return doc.keys if doc is not None else None

    def status_list(self, url: str) -> dict[str, Any]:
        if url not in self._lists:
            try:
                self._lists[url] = fetch_json(url, self.limits)
            except FetchError as exc:
                raise SourceError(f"cannot fetch the status list {url}: {exc}") from exc
        return self._lists[url]


def cache_name(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32] + ".json"


MAX_CACHED_LEDGER_BYTES = 256 * 1024 * 1024


def _cached_bundle(path: Path) -> Any:
    """Cached ledger evidence, read within the depth bound like any input (the cache is a folder
    anyone may have handed over), and a larger size bound: it grows with the ledger."""
    try:
        return loads(path.read_bytes(), max_bytes=MAX_CACHED_LEDGER_BYTES)
    except CanonicalizationError as exc:
        raise LedgerError(f"malformed ledger cache {path.name}: {exc}") from exc


class CacheSources:
    """A cache folder (``academy credentials cache`` fills it): ``ledger/`` holds each pinned
    registry's ledger genesis, address and commit evidence; ``issuers/`` the issuers' DID
    documents as resolved while online; ``status/`` the signed status lists."""

    offline = True

    def __init__(
        self, folder: Path, genesis: str | None = None, registry: str | None = None
    ) -> None:
        self.folder = Path(folder)
        self.genesis = genesis
        self.registry = registry
        self._facts: dict[str, LedgerFacts] = {}
        self._issuers: dict[str, IssuerDocument | SourceError | None] = {}
        self.memo: dict[tuple, Any] = {}
        """Checked status lists, so a thousand credentials on one list check it once."""

    def issuer_document(self, issuer_id: str) -> IssuerDocument | None:
        """The issuer's DID document as the cache keeps it (read once per issuer)."""
        if issuer_id not in self._issuers:
            try:
                self._issuers[issuer_id] = self._read_issuer(issuer_id)
            except SourceError as exc:
                self._issuers[issuer_id] = exc
        known = self._issuers[issuer_id]
        if isinstance(known, SourceError):
            raise known
        return known

    def _read_issuer(self, issuer_id: str) -> IssuerDocument | None:
        if issuer_document_url(issuer_id) is None:
            return None
        path = self.folder / "issuers" / cache_name(issuer_id)
        if not path.exists():
            raise SourceError(
                f"the issuer {issuer_id} is not in the cache {self.folder}: run "
                "`academy credentials cache` while online"
            )
        try:
            return read_issuer_document(issuer_id, loads(path.read_bytes()))
        except (CanonicalizationError, OSError) as exc:
            raise SourceError(f"the cached document of {issuer_id} is unusable: {exc}") from exc

    def trusted_genesis(self, registry: str) -> str | None:
        return self.genesis

    def ledger_facts(self, registry: str) -> LedgerFacts:
        if registry not in self._facts:
            path = self.folder / "ledger" / cache_name(registry.lower())
            if not path.exists():
                raise LedgerError(
                    f"no evidence of registry {registry} in the cache {self.folder}: run "
                    "`academy credentials cache` while online"
                )
            self._facts[registry] = facts_from_bundle(_cached_bundle(path))
        return self._facts[registry]

    def status_list(self, url: str) -> dict[str, Any]:
        path = self.folder / "status" / cache_name(url)
        if not path.exists():
            raise SourceError(
                f"status list {url} is not in the cache {self.folder}: run "
                "`academy credentials cache` while online"
            )
        try:
            return loads(path.read_bytes())
        except CanonicalizationError as exc:
            raise SourceError(f"status list {url} in the cache is unusable: {exc}") from exc


class _Run:
    """One verification: the document, its parts, and what earlier checks established."""

    def __init__(
        self, doc: Any, sources: Sources | None, key: str | None, now: dt.datetime
    ) -> None:
        self.doc = doc
        self.sources = sources
        self.key = key
        self.now = now
        self.proofs: list[dict[str, Any]] = []
        self.sig_proofs: list[dict[str, Any]] = []
        self.anchors: list[dict[str, Any]] = []
        self.signer: str | None = None
        self.signed_at: dt.datetime | None = None
        self.facts: LedgerFacts | None = None
        self.facts_error: str | None = None
        self.genesis_pinned = ""
        self.anchored_at: dt.datetime | None = None
        self.issuer = issuer_id_of(doc) if isinstance(doc, dict) else None
        self._document: IssuerDocument | None = None
        self.document_error: str | None = None
        self._document_read = False

    def issuer_document(self) -> IssuerDocument | None:
        """The issuer's own DID document, read once (None: a did:key, or it cannot be had:
        ``document_error`` then says why)."""
        if not self._document_read:
            self._document_read = True
            if self.sources is None or not self.issuer:
                self.document_error = "no source to resolve the issuer with"
            else:
                try:
                    self._document = self.sources.issuer_document(self.issuer)
                except SourceError as exc:
                    self.document_error = str(exc)
        return self._document

    def pinned_ledger(self) -> tuple[str, str | None]:
        """(registry address, genesis hash) of the issuer's ledger registry: the ones the
        verifier pins, else the ones the issuer's DID document names. Never the registry an
        anchor proof names: that proof is unsigned. LedgerError says why none is known."""
        pinned = getattr(self.sources, "registry", None)
        doc = self.issuer_document()
        if doc is not None and doc.ledgers:
            wanted = pinned or self._anchor_registry()
            bound = doc.registry(wanted) if wanted else None
            if pinned and bound is None:
                raise LedgerError(
                    f"the issuer's DID document names registry {doc.ledgers[0].registry}, not "
                    f"the pinned {pinned}"
                )
            # an anchor naming a registry the issuer does not list is held against its own
            bound = bound or doc.ledgers[0]
            return bound.registry, bound.genesis_hash
        if pinned:
            return pinned, None
        why = (
            f"its DID document cannot be read ({self.document_error})"
            if self.document_error
            else "it has no DID document with a ledger service"
        )
        raise LedgerError(
            f"nothing the issuer controls names its ledger registry: {why}; pin one with --registry"
        )

    def _anchor_registry(self) -> str | None:
        """The registry the anchor proof names: only ever matched against the issuer's own."""
        ledger = self.anchors[0].get("ledger") if self.anchors else None
        named = ledger.get("registry") if isinstance(ledger, dict) else None
        return named if isinstance(named, str) else None

    def ledger(self) -> LedgerFacts | None:
        """The facts of the issuer's pinned registry (read once; None: ``facts_error``)."""
        if self.facts is None and self.facts_error is None:
            if self.sources is None:
                self.facts_error = "no ledger source given"
            else:
                try:
                    registry, genesis = self.pinned_ledger()
                    self.facts = self._pinned(genesis, self.sources.ledger_facts(registry))
                except (LedgerError, KeyError, TypeError) as exc:
                    self.facts_error = str(exc)
        return self.facts

    def _pinned(self, bound: str | None, facts: LedgerFacts) -> LedgerFacts:
        """``facts`` if their ledger is the one the verifier trusts. A ledger is named by its
        genesis; whoever serves the evidence could serve a whole forged chain of its own, so
        the pinned genesis (``--genesis``, else the one the issuer's DID document names) is
        checked, and an unpinned one is reported as such."""
        assert self.sources is not None  # ledger() asks only with sources
        pinned = self.sources.trusted_genesis(facts.registry)
        for name, want in (("the trusted", pinned), ("the issuer's DID document's", bound)):
            if want and facts.genesis_hash.lower() != want.strip().lower():
                raise LedgerError(
                    f"the ledger serving the evidence has genesis {facts.genesis_hash[:18]}..., "
                    f"not {name} {want.strip()[:18]}..."
                    + (" (--genesis / ACADEMY_LEDGER_GENESIS)" if want is pinned else "")
                )
        self.genesis_pinned = (
            "genesis pinned" if pinned else "genesis pinned by the issuer's DID document"
        ) if (pinned or bound) else ""  # fmt: skip
        return facts

    # -- checks ----------------------------------------------------------------------------
    def schema(self) -> tuple[str, str]:
        if not isinstance(self.doc, dict):
            return FAIL, "not a JSON object"
        problem = bound_problem(self.doc) or schema_problem(self.doc)
        if problem:
            return FAIL, problem
        self.proofs = proofs_of(self.doc)
        self.sig_proofs = [p for p in self.proofs if is_signature_proof(p)]
        self.anchors = [p for p in self.proofs if is_anchor_proof(p)]
        unknown = [
            p.get("type") for p in self.proofs if not (is_signature_proof(p) or is_anchor_proof(p))
        ]
        if unknown:
            return FAIL, f"unknown proof type {unknown[0]!r}"
        kinds = ", ".join(sorted(set(self.doc["type"]) - {"VerifiableCredential"})) or "VC"
        return PASS, f"VC 2.0 {kinds}"

    def dates(self) -> tuple[str, str]:
        start = parse_time(self.doc["validFrom"]) if "validFrom" in self.doc else None
        end = parse_time(self.doc["validUntil"]) if "validUntil" in self.doc else None
        if start and end and end <= start:
            return FAIL, "validUntil is not after validFrom"
        if start and self.now < start:
            return FAIL, f"not yet valid: valid from {format_time(start)}"
        if end and self.now >= end:
            return FAIL, f"expired: valid until {format_time(end)}"
        for p in self.sig_proofs:
            created = parse_time(p["created"])
            if created > self.now + CLOCK_SKEW:
                return FAIL, f"signature dated in the future ({p['created']})"
        span = f"valid from {format_time(start)}" if start else "no validFrom"
        return PASS, span + (f" until {format_time(end)}" if end else "")

    def signature(self) -> tuple[str, str]:
        result = verify_proof_set(self.doc, self.key)
        if not result.ok:
            return FAIL, result.detail
        self.signer = result.multikey
        self.signed_at = parse_time(self.sig_proofs[0]["created"])
        return PASS, result.detail

    def issuer_key(self) -> tuple[str, str]:
        if self.signer is None or self.signed_at is None:
            return FAIL, "no verified signature to attribute"
        problem = self._method_problem()
        if problem:
            return FAIL, problem
        if self.anchors:
            facts = self.ledger()
            if facts is None:
                return FAIL, f"cannot read the issuer's keys from the ledger: {self.facts_error}"
            history = facts.keys.get(issuer_tag(self.issuer or ""))
            if history is None:
                return FAIL, f"the issuer's registry records no keys for {self.issuer}"
            batch = self._batch(facts)
            self.anchored_at = batch.timestamp if batch else None
            verdict = history.check(self.signer, self.signed_at, self.anchored_at)
            if not verdict.ok:
                return FAIL, verdict.detail
            refused = self._document_refuses(self.signer, self.signed_at, self.anchored_at)
            return (FAIL, refused) if refused else (PASS, verdict.detail)
        refused = self._ledger_refuses(self.signer, self.signed_at) or self._document_refuses(
            self.signer, self.signed_at, None
        )
        if refused:
            return FAIL, refused
        if self.key is not None:
            return PASS, "the key given with --key (no ledger anchor to check it against)"
        doc = self.issuer_document()
        if doc is not None and doc.keys.find(self.signer):
            return PASS, "a key the issuer's DID document lists (the credential has no anchor)"
        if self.issuer and self.issuer.startswith("did:key:"):
            return PASS, "the issuer is the did:key that signed"
        return FAIL, "nothing says whose key this is: give the issuer's key with --key"

    def _method_problem(self) -> str | None:
        """Why a signature proof's verificationMethod is not one of the issuer's assertion
        keys, or None. A DID issuer controls its keys: each proof names a method of that DID,
        and a did:web lists it under ``assertionMethod`` in its document (a fragment of any
        other URL proves nothing). Other issuer ids (https, from before issuers were DIDs)
        need the key listed in the document they publish."""
        issuer = self.issuer or ""
        for p in self.sig_proofs:
            method = str(p.get("verificationMethod"))
            if issuer.startswith("did:") and method.split("#", 1)[0] != issuer:
                return f"the proof's verificationMethod {method[:60]!r} is not a key of {issuer}"
            if issuer.startswith("did:key:"):
                continue
            doc = self.issuer_document()
            if doc is None:
                if self.key is not None:
                    continue  # the verifier named the key; no document to list it
                why = self.document_error or "the source holds no document of this issuer"
                return f"cannot read the issuer's DID document: {why}"
            listed = doc.assertion_key(method) if issuer.startswith("did:") else None
            if issuer.startswith("did:") and listed is None:
                return f"{method[:60]!r} is not listed under the issuer's assertionMethod"
            if not issuer.startswith("did:") and doc.keys.find(self.signer or "") is None:
                return "the signing key is not one the issuer's document lists"
        return None

    def _document_refuses(
        self, multikey: str, signed_at: dt.datetime, anchored_at: dt.datetime | None
    ) -> str | None:
        """Why the issuer's DID document refuses ``multikey`` at ``signed_at`` (revoked,
        expired), or None (also when there is no document)."""
        doc = self.issuer_document()
        record = doc.keys.find(multikey) if doc else None
        if doc is None or record is None:
            return None
        verdict = doc.keys.check(multikey, signed_at, anchored_at)
        return None if verdict.ok else verdict.detail + " (the issuer's DID document)"

    def _ledger_refuses(self, multikey: str, signed_at: dt.datetime) -> str | None:
        """Why the key records of the issuer's pinned registry refuse ``multikey`` at
        ``signed_at`` for a credential with no anchor (revoked, rotated out), or None. Read
        online and offline alike; another registry's records (anyone can deploy one and write
        anything under any issuer's id) never count. Without an anchor they only ever refuse."""
        facts = self.ledger() if self.sources is not None and self.issuer else None
        history = facts.keys.get(issuer_tag(self.issuer or "")) if facts else None
        if history is None or history.find(multikey) is None:
            return None
        verdict = history.check(multikey, signed_at, None)
        if not verdict.ok:
            return verdict.detail + " (the ledger's key record; no anchor in the credential)"
        return None

    def _list_signer_problem(
        self, multikey: str, signed_at: dt.datetime, facts: LedgerFacts | None
    ) -> str | None:
        """Why the key that signed a status list is not the issuer's own, or None. The list
        is checked against the issuer's keys only (the pinned registry's record when the
        credential is anchored, else the key given with --key, the keys the issuer's DID
        document lists, or the issuer's own did:key), never against the key the list names."""
        if self.anchors:
            if facts is None:
                return f"cannot check who signed the status list: {self.facts_error}"
            history = facts.keys.get(issuer_tag(self.issuer or ""))
            verdict = history.check(multikey, signed_at, None) if history else None
            if verdict is None or not verdict.ok:
                return "status list signed by a key that is not the issuer's valid key"
            refused = self._document_refuses(multikey, signed_at, None)
            return f"status list key: {refused}" if refused else None
        refused = self._ledger_refuses(multikey, signed_at) or self._document_refuses(
            multikey, signed_at, None
        )
        if refused:
            return f"status list key: {refused}"
        if self.key is not None:
            return None if multikey == self.key else "status list not signed by the --key"
        doc = self.issuer_document()
        if doc is not None and doc.keys.find(multikey):
            return None
        if self.issuer and self.issuer.startswith("did:key:"):
            try:
                if multikey_from_reference(self.issuer) == multikey:
                    return None
            except KeyFormatError:
                pass
        return "status list signed by a key that is not the issuer's"

    def _batch(self, facts: LedgerFacts) -> Any:
        try:
            return facts.batches.get(bytes.fromhex(self.anchors[0]["merkleRoot"]))
        except (KeyError, TypeError, ValueError):
            return None

    def merkle(self) -> tuple[str, str]:
        if not self.anchors:
            return NA, "no ledger anchor proof (signature-only credential)"
        if len(self.anchors) > 1:
            return FAIL, "more than one ledger anchor proof"
        anchor = self.anchors[0]
        try:
            root = root_from_path(leaf_of(self.doc), anchor["path"])
        except (KeyError, ValueError) as exc:
            return FAIL, f"malformed Merkle path: {exc}"
        if root.hex() != str(anchor.get("merkleRoot", "")).lower():
            return FAIL, "the path does not lead from this credential to the batch root"
        return PASS, f"leaf included under root {root.hex()[:16]}... ({len(anchor['path'])} steps)"

    def ledger_anchor(self) -> tuple[str, str]:
        if not self.anchors:
            return NA, "no ledger anchor proof (signature-only credential)"
        anchor = self.anchors[0]
        facts = self.ledger()
        if facts is None:
            return FAIL, f"cannot check the ledger: {self.facts_error}"
        claimed = anchor.get("ledger") or {}
        if str(claimed.get("genesisHash", "")).lower() != facts.genesis_hash.lower():
            return FAIL, "anchored on another ledger than the trusted one (genesis differs)"
        if str(claimed.get("registry", "")).lower() != facts.registry.lower():
            return FAIL, (
                f"anchored in registry {str(claimed.get('registry'))[:42]}, not the issuer's "
                f"{facts.registry} (named by its DID document or pinned with --registry)"
            )
        batch = self._batch(facts)
        seen = f"as of block {facts.height}" + (
            f" ({format_time(facts.as_of)})" if facts.as_of else ""
        )
        if batch is None:
            return FAIL, f"root not on the ledger ({seen})"
        if batch.issuer != issuer_tag(self.issuer or ""):
            return FAIL, "the root was anchored for another issuer"
        if (
            claimed.get("blockNumber") != batch.block_number
            or str(claimed.get("blockHash", "")).lower() != batch.block_hash.lower()
            or str(claimed.get("transaction", "")).lower() != batch.tx_hash.lower()
        ):
            return FAIL, "the anchor names another block or transaction than the ledger records"
        where = "cached evidence" if self.sources and self.sources.offline else "live evidence"
        trust = (
            self.genesis_pinned
            or "genesis as the evidence states it, not pinned: pass --genesis to pin it"
        )
        return PASS, (
            f"root in block {batch.block_number} ({format_time(batch.timestamp)}), finality "
            f"signatures checked ({where}, {seen}; {trust})"
        )

    def status(self) -> tuple[str, str]:
        entries = status_entries(self.doc)
        if not entries:
            return NA, "the credential has no credentialStatus"
        if self.sources is None:
            return FAIL, "no source for status lists"
        notes = []
        for entry in entries:
            outcome, detail = self._one_status(entry)
            if outcome != PASS:
                return outcome, detail
            notes.append(detail)
        return PASS, "; ".join(notes)

    def _one_status(self, entry: dict[str, Any]) -> tuple[str, str]:
        url, purpose = entry["statusListCredential"], entry["statusPurpose"]
        index = int(entry["statusListIndex"])
        facts = self.ledger() if self.anchors else None
        memo = getattr(self.sources, "memo", None)
        memo_key = (url, purpose, self.issuer, self.key, bool(self.anchors), id(facts))
        loaded = memo.get(memo_key) if memo is not None else None
        if loaded is None:
            loaded = self._load_list(url, purpose, facts)
            if memo is not None:
                memo[memo_key] = loaded
        bits, problem = loaded
        if bits is None:
            return FAIL, problem
        try:
            bit = bits.get(index)
        except StatusListError as exc:
            return FAIL, f"status list: {exc}"
        if facts is not None:
            on_ledger = facts.statuses.get((list_tag(url), index, PURPOSE_CODES.get(purpose, -1)))
            if on_ledger is not None and on_ledger != bit:
                return FAIL, (
                    "status list disagrees with the ledger (stale or tampered): the ledger "
                    f"records {purpose} {'set' if on_ledger else 'cleared'}"
                )
        if bit:
            word = "revoked" if purpose == "revocation" else "suspended"
            return FAIL, f"{word} (status list {url}, index {index})"
        return PASS, f"not {'revoked' if purpose == 'revocation' else 'suspended'}"

    def _load_list(
        self, url: str, purpose: str, facts: LedgerFacts | None
    ) -> tuple[StatusList | None, str]:
        """Fetch and check a status list once: (its bits, "") or (None, why it is unusable)."""
        assert self.sources is not None  # status() answers without sources before asking here
        try:
            lst = self.sources.status_list(url)
        except SourceError as exc:
            return None, str(exc)
        if not isinstance(lst, dict) or "BitstringStatusListCredential" not in lst.get("type", []):
            return None, f"status list {url} is not a BitstringStatusListCredential"
        if lst.get("id") != url or issuer_id_of(lst) != self.issuer:
            return None, "status list is not the issuer's list at that URL"
        sig = [p for p in proofs_of(lst) if is_signature_proof(p)]
        if not sig:
            return None, "status list is not signed"
        checked = verify_proof_set(lst, self.key if not self.anchors else None)
        if not checked.ok:
            return None, f"status list signature: {checked.detail}"
        problem = self._list_signer_problem(
            checked.multikey or "", parse_time(sig[0]["created"]), facts
        )
        if problem:
            return None, problem
        subject = lst.get("credentialSubject") or {}
        if subject.get("statusPurpose") != purpose:
            return None, f"status list is for {subject.get('statusPurpose')!r}, not {purpose!r}"
        try:
            return StatusList.decode(subject.get("encodedList")), ""
        except StatusListError as exc:
            return None, f"status list: {exc}"


def verify_credential(
    document: Any,
    sources: Sources | None = None,
    *,
    key: str | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """Run every check on ``document``. ``key`` (a Multikey or did:key) is the key the verifier
    expects; ``sources`` None means nothing but the document itself is consulted."""
    if key is not None:
        key = multikey_from_reference(key)
    run = _Run(document, sources, key, now or dt.datetime.now(dt.UTC))
    report = Report(document.get("id") if isinstance(document, dict) else None)
    report.issuer_id = run.issuer if isinstance(run.issuer, str) else None
    steps = [
        ("schema", run.schema),
        ("dates", run.dates),
        ("signature", run.signature),
        ("issuer key", run.issuer_key),
        ("merkle inclusion", run.merkle),
        ("ledger anchor", run.ledger_anchor),
        ("status", run.status),
    ]
    schema_ok = True
    for name, step in steps:
        if not schema_ok:
            report.checks.append(Check(name, FAIL, "not checked: the credential is malformed"))
            continue
        try:
            outcome, detail = step()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            outcome, detail = FAIL, f"malformed credential: {type(exc).__name__}: {exc}"
        report.checks.append(Check(name, outcome, detail))
        if name == "schema" and outcome == FAIL:
            schema_ok = False
    judge = getattr(sources, "known_issuer", None)
    if callable(judge):
        known = judge(report.issuer_id, run.signer) if report.issuer_id and run.signer else None
        report.issuer_known = known is not None
        report.issuer_name = known
    return report


def fill_cache(
    folder: Path,
    documents: list[dict[str, Any]],
    rpc_url: str | None,
    genesis: str | None = None,
    limits: FetchLimits | None = None,
    registry: str | None = None,
    did_web_http: bool = False,
) -> dict[str, int]:
    """Fetch, while online, everything offline verification of ``documents`` needs: each
    issuer's DID document, ledger evidence for the registry it names (or ``registry``, pinned by
    the verifier; never one an anchor proof names), and each status list they point to (within
    ``limits``). ``genesis``: the ledger's pinned genesis hash; evidence of another ledger, or of
    another one than the issuer's document names, is refused."""
    folder = Path(folder)
    for part in ("ledger", "status", "issuers"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    online = OnlineSources(rpc_url, genesis, limits, registry, did_web_http)
    registries: dict[str, str | None] = {registry: None} if registry else {}
    lists, issuers, anchored = set(), set(), False
    for doc in documents:
        anchored = anchored or any(is_anchor_proof(p) for p in proofs_of(doc))
        issuer = issuer_id_of(doc)
        found = online.issuer_document(issuer) if issuer else None
        if issuer and issuer not in issuers:
            issuers.add(issuer)
            if found is not None:
                body = json.dumps(online.issuer_bodies[issuer])
                (folder / "issuers" / cache_name(issuer)).write_text(body)
        if found is not None and found.ledger is not None:
            registries.setdefault(found.ledger.registry, found.ledger.genesis_hash)
        named = next((p["ledger"].get("registry") for p in proofs_of(doc) if is_anchor_proof(p)
                      and isinstance(p.get("ledger"), dict)), None)  # fmt: skip
        listed = found.registry(str(named)) if found is not None and named else None
        if listed is not None:  # an older registry the issuer still lists
            registries.setdefault(listed.registry, listed.genesis_hash)
        for entry in status_entries(doc):
            lists.add(entry["statusListCredential"])
    if anchored and not registries:
        raise LedgerError(
            "the credentials are anchored, but nothing pins their registry: the issuer's DID "
            "document names none; pass --registry ADDRESS"
        )
    if registries and not rpc_url:
        raise LedgerError("the credentials are anchored on a ledger: pass --rpc URL to cache it")
    for address, bound in sorted(registries.items()):
        bundle = fetch_ledger_bundle(rpc_url or "", address)
        facts = facts_from_bundle(bundle)  # never cache evidence that does not hold
        for want in (genesis, bound):
            if want and facts.genesis_hash.lower() != want.strip().lower():
                raise LedgerError(
                    f"the ledger at {rpc_url} has genesis {facts.genesis_hash}, not the trusted "
                    f"{want.strip()}: it is another ledger"
                )
        (folder / "ledger" / cache_name(address.lower())).write_text(json.dumps(bundle))
    for url in sorted(lists):
        status_list = online.status_list(url)
        (folder / "status" / cache_name(url)).write_text(json.dumps(status_list))
    return {"registries": len(registries), "status_lists": len(lists), "issuers": len(issuers)}
