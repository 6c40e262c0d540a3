"""Issuer identity: a ``did:web`` an institution controls, and the DID document that names its keys
and its ledger registry.

An institution's issuer id is ``did:web:HOST%3APORT:seg:seg``; the did:web method resolves it to
``https://HOST:PORT/seg/seg/did.json`` (``/.well-known/did.json`` when there is no path). Academy
serves that document for every institution. It lists:

- every key the issuer ever signed with, as a ``Multikey`` verification method whose id is
  ``DID#<multikey>``, under ``verificationMethod`` and ``assertionMethod`` (a credential's proof
  must name one of these, so its controller is the issuer). A key rotated out carries
  ``expires``, a revoked (compromised) one ``revoked``: both terms of the Multikey vocabulary;
- the ledger registry the issuer writes to, as a ``service`` whose endpoint is
  ``urn:chainacademy:ledger:<chainId>:<genesisHash>:<registry>``. A verifier reads key records,
  anchors and status changes only from that registry (or one it pins itself), never from the
  address an unsigned anchor proof names: anyone can deploy a registry of their own on the same
  ledger and write anything there.

``did:key`` issuers (a key and nothing else, for offline demos) have no document to fetch: the
DID is the key. The http scheme exists only for loopback hosts, and only when the caller asks
(tests and local demos run academy on ``http://127.0.0.1``); everything else resolves over https.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from .keys import KeyFormatError, KeyHistory, KeyRecord, decode_multikey, format_time, parse_time

DID_V1_CONTEXT = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
DID_CONTEXT_FILES = {DID_V1_CONTEXT: "did-v1.jsonld", MULTIKEY_CONTEXT: "multikey-v1.jsonld"}
LEDGER_SERVICE_TYPE = "https://w3id.org/chainacademy/credentials#LedgerRegistry"
LEDGER_URN = "urn:chainacademy:ledger:"
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class DidError(ValueError):
    """A DID or DID document cannot be used; the message says what is wrong."""


@functools.cache
def pinned_did_context(url: str) -> dict[str, Any]:
    """The shipped copy of the DID v1 or Multikey context (KeyError for another)."""
    name = DID_CONTEXT_FILES[url]
    text = resources.files("academy.credentials").joinpath("data", "contexts", name).read_text()
    return json.loads(text)


# -- did:web <-> URL ------------------------------------------------------------------------------


def did_web_for(url: str) -> str:
    """The did:web naming the document served at ``url``'s folder (``https://h:8000/a/b`` ->
    ``did:web:h%3A8000:a:b``, resolved at ``https://h:8000/a/b/did.json``)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise DidError(f"{url!r} has no host to make a did:web of")
    host = parts.hostname + (f"%3A{parts.port}" if parts.port else "")
    segments = [quote(s, safe="") for s in parts.path.split("/") if s]
    return ":".join(["did:web", host, *segments])


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def did_web_url(did: str, http_loopback: bool = False) -> str:
    """Where ``did`` (a did:web) is resolved. ``http_loopback``: a loopback host is fetched over
    plain http (every other host still over https)."""
    if not isinstance(did, str) or not did.startswith("did:web:"):
        raise DidError(f"{did!r} is not a did:web")
    body = did[len("did:web:") :]
    if not body or any(c in body for c in "#?/"):
        raise DidError(f"{did!r}: a did:web names a host and path segments, nothing else")
    host, *segments = body.split(":")
    host = unquote(host)
    if not host or any(not s for s in segments):
        raise DidError(f"{did!r} has an empty host or path segment")
    name = urlsplit("//" + host).hostname or ""
    scheme = "http" if http_loopback and is_loopback(name) else "https"
    path = "/".join(unquote(s) for s in segments)
    return (
        f"{scheme}://{host}/{path}/did.json" if path else f"{scheme}://{host}/.well-known/did.json"
    )


def method_id(did: str, multikey: str) -> str:
    """The id of a key in the issuer's DID document (a did:key names its key twice)."""
    return f"{did}#{multikey}"


# -- the ledger binding ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerBinding:
    """The ledger and registry an issuer records its keys, anchors and statuses in."""

    chain_id: int
    genesis_hash: str
    registry: str

    def endpoint(self) -> str:
        return f"{LEDGER_URN}{self.chain_id}:{self.genesis_hash.lower()}:{self.registry}"

    @classmethod
    def parse(cls, endpoint: Any) -> LedgerBinding:
        text = endpoint if isinstance(endpoint, str) else ""
        parts = text[len(LEDGER_URN) :].split(":") if text.startswith(LEDGER_URN) else []
        if (
            len(parts) != 3
            or not parts[0].isdigit()
            or not _HEX.match(parts[1])
            or not _HEX.match(parts[2])
            or len(parts[2]) != 42
        ):
            raise DidError(
                f"ledger service endpoint {str(endpoint)[:80]!r} is not "
                f"{LEDGER_URN}<chainId>:<genesisHash>:<registry address>"
            )
        return cls(int(parts[0]), parts[1].lower(), parts[2])


# -- the document ---------------------------------------------------------------------------------


def did_document(
    did: str, history: KeyHistory, ledgers: LedgerBinding | list[LedgerBinding] | None
) -> dict[str, Any]:
    """The DID document of an issuer: its keys (all it ever signed with, each with its end of
    service or revocation) and its ledger registries, the one it writes to now first (older
    ones stay listed: what was anchored there stays checkable)."""
    methods = []
    for r in sorted(history.records, key=lambda r: r.valid_from):
        vm: dict[str, Any] = {
            "id": method_id(did, r.multikey),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": r.multikey,
        }
        if r.valid_until is not None:
            vm["expires"] = format_time(r.valid_until)
        if r.revoked_at is not None:
            vm["revoked"] = format_time(r.revoked_at)
        methods.append(vm)
    doc: dict[str, Any] = {
        "@context": [DID_V1_CONTEXT, MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": [vm["id"] for vm in methods],
    }
    bindings = [ledgers] if isinstance(ledgers, LedgerBinding) else list(ledgers or [])
    if bindings:
        doc["service"] = [
            {
                "id": f"{did}#ledger" + (f"-{n + 1}" if n else ""),
                "type": LEDGER_SERVICE_TYPE,
                "serviceEndpoint": b.endpoint(),
            }
            for n, b in enumerate(bindings)
        ]
    return doc


@dataclass
class IssuerDocument:
    """What an issuer's own document establishes: its assertion keys and its registry."""

    id: str
    keys: KeyHistory = field(default_factory=KeyHistory)
    assertion: set[str] = field(default_factory=set)
    """The verification method ids listed under ``assertionMethod``."""
    ledgers: list[LedgerBinding] = field(default_factory=list)
    """The registries the issuer names, the one it writes to now first."""

    @property
    def ledger(self) -> LedgerBinding | None:
        """The registry the issuer writes to now."""
        return self.ledgers[0] if self.ledgers else None

    def registry(self, address: str) -> LedgerBinding | None:
        """The issuer's binding of the registry at ``address`` (None: not one it names)."""
        return next((b for b in self.ledgers if b.registry.lower() == address.lower()), None)

    def assertion_key(self, verification_method: str) -> str | None:
        """The Multikey of ``verification_method`` if the issuer lists it for assertions."""
        if verification_method not in self.assertion:
            return None
        multikey = verification_method.rsplit("#", 1)[-1]
        return multikey if self.keys.find(multikey) is not None else None


def parse_did_document(doc: Any, did: str) -> IssuerDocument:
    """Read an issuer's DID document, refusing one that is not ``did``'s or lists a key it does
    not control. Keys are Multikey (Ed25519) with ids ``DID#<multikey>``."""
    if not isinstance(doc, dict):
        raise DidError("the DID document is not a JSON object")
    if doc.get("id") != did:
        raise DidError(f"the DID document is of {str(doc.get('id'))[:80]!r}, not of {did}")
    methods = doc.get("verificationMethod", [])
    assertion = doc.get("assertionMethod", [])
    services = doc.get("service", [])
    if not all(isinstance(x, list) for x in (methods, assertion, services)):
        raise DidError("verificationMethod, assertionMethod and service must be lists")
    out = IssuerDocument(did)
    for vm in methods:
        if not isinstance(vm, dict) or vm.get("type") != "Multikey":
            continue
        multikey = vm.get("publicKeyMultibase")
        if vm.get("controller") != did or vm.get("id") != method_id(did, str(multikey)):
            raise DidError(f"verification method {str(vm.get('id'))[:80]!r} is not {did}'s")
        try:
            decode_multikey(str(multikey))
            record = KeyRecord(str(multikey), EPOCH)
            if vm.get("expires"):
                record.valid_until = parse_time(vm["expires"])
            if vm.get("revoked"):
                record.revoked_at = parse_time(vm["revoked"])
            out.keys.add(record)
        except (KeyFormatError, ValueError) as exc:
            raise DidError(f"verification method {vm.get('id')}: {exc}") from exc
    for item in assertion:
        if isinstance(item, str):
            out.assertion.add(item)
    for svc in services:
        if isinstance(svc, dict) and svc.get("type") == LEDGER_SERVICE_TYPE:
            out.ledgers.append(LedgerBinding.parse(svc.get("serviceEndpoint")))
    return out
