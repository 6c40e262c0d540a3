"""A third party agrees: Digital Bazaar's VC 2.0 stack (``@digitalbazaar/vc``, ``data-integrity``,
the eddsa-jcs-2022 and eddsa-rdfc-2022 cryptosuites, ``vc-bitstring-status-list``, jsonld.js in
safe mode; pinned in package-lock.json) verifies what academy issues, and reaches the verdicts
``academy verify`` reaches, status included.

Two issuers: an institution's ``did:web`` (its DID document served on a loopback server, handed to
the JavaScript loader keyed by the DID) and a ``did:key`` (the offline path: the key is the
identifier). Their credentials are issued twice over: signature-only, and anchored on a real
academy ledger. The status lists are published on the same server; ``academy verify --offline``
reads them from a cache filled from that server, the JavaScript verifier from the same documents
through its loader (``thirdparty/verify.mjs``), which fetches nothing.

Where the verdicts differ, they differ by academy's policy, and the tests below hold each
difference to exactly what it is:

- a credential with one of its two proofs stripped: the library verifies the proof that is left,
  academy refuses the downgrade (both proofs are required);
- a key revoked on the ledger stays in the issuer's DID document, under ``assertionMethod``, with
  ``revoked``: what it signed before the ledger saw the revocation verifies in both, but a
  signature it made afterwards (backdated, no anchor) verifies in the library, which does not read
  ``revoked``, while academy refuses it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from academy.cli import app
from academy.credentials import proofs
from academy.credentials.credential import PINNED_CONTEXT_FILES
from academy.credentials.did import DID_CONTEXT_FILES, did_web_for, did_web_url
from academy.credentials.fetch import FetchLimits
from academy.credentials.issuer import Issuer, now_utc
from academy.credentials.keys import IssuerKey
from academy.credentials.statuslist import StatusList
from academy.credentials.verify import cache_name, fill_cache
from typer.testing import CliRunner

HERE = Path(__file__).parent
SCRIPT = HERE / "thirdparty" / "verify.mjs"
CONTEXTS = Path(proofs.__file__).parent / "data" / "contexts"
ACHIEVEMENT = {
    "id": "https://academy.example/courses/consensus",
    "name": "Consensus in practice",
    "description": "BFT voting, finality and forks, on a chain of one's own.",
    "criteria": "Every lab scored at least 60% of its points.",
    "level": "blockchain engineering technician: intermediate",
    "course": "consensus",
}


def node_verify(request: dict[str, Any]) -> dict[str, Any]:
    """Run the JavaScript verifier on ``request`` (contexts are added here)."""
    node = shutil.which("node")
    assert node, "node is missing: deploy/bootstrap.sh installs it"
    pinned = {**PINNED_CONTEXT_FILES, **DID_CONTEXT_FILES}
    body = {"contexts": {url: str(CONTEXTS / name) for url, name in pinned.items()}, **request}
    done = subprocess.run(
        [node, str(SCRIPT)], input=json.dumps(body), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def academy_verdict(
    doc: dict, cache: Path, tmp: Path, key: str | None = None, registry: str | None = None
) -> str:
    """``academy verify --offline``'s verdict; ``registry`` pins the ledger registry where no
    DID document names one (a did:key issuer)."""
    path = tmp / "credential.json"
    path.write_text(json.dumps(doc))
    pinned_key = ["--key", key] if key else []
    pinned_key += ["--registry", registry] if registry else []
    result = CliRunner().invoke(
        app, ["verify", str(path), "--offline", "--cache", str(cache), "--json", *pinned_key]
    )
    return json.loads(result.stdout)["verdict"]


def draft(issuer: Issuer, n: int) -> dict:
    return issuer.draft(
        f"urn:uuid:00000000-0000-4000-9000-{n:012d}",
        f"learner{n}",
        ACHIEVEMENT,
        [{"name": "tbft", "score": 9, "max": 10}],
        "2026-01-01T00:00:00Z",
    )


def publish(issuer: Issuer, status_server) -> dict[str, dict]:
    """Publish the issuer's status lists (and DID document, for a did:web) on the loopback
    server: what the JavaScript loader is handed, by URL (the DID document by its DID)."""
    served = {}
    for purpose in ("revocation", "suspension"):
        lst = issuer.status_list(purpose)
        served[lst["id"]] = lst
        status_server.publish(lst["id"], lst)
    if issuer.id.startswith("did:web:"):
        served[issuer.id] = issuer.did_document()
        status_server.publish(did_web_url(issuer.id, http_loopback=True), served[issuer.id])
    return served


def new_issuer(kind: str, path: str, academy_ledger, status_server) -> tuple[Issuer, IssuerKey]:
    key = IssuerKey.generate()
    base = status_server.base_url + path
    ident = f"did:key:{key.multikey}" if kind == "did:key" else did_web_for(base)
    issuer = Issuer(ident, "Third Party Check Institute", base + "/status", academy_ledger.registry)
    issuer.add_key(key=key)
    return issuer, key


@pytest.fixture(scope="module", params=["did:web", "did:key"])
def world(request, academy_ledger, status_server, tmp_path_factory):
    kind = request.param
    issuer, key = new_issuer(kind, f"/thirdparty/{kind[4:]}", academy_ledger, status_server)
    anchored = issuer.issue([draft(issuer, n) for n in range(3)])
    plain = Issuer(issuer.id, issuer.name, issuer.lists["revocation"].url.rsplit("/", 2)[0])
    plain.history, plain.lists, plain.by_credential = (
        issuer.history,
        issuer.lists,
        issuer.by_credential,
    )
    signed_only = plain.issue([draft(issuer, n) for n in range(3, 6)])
    for docs in (anchored, signed_only):
        issuer.set_status(docs[1]["id"], "revocation")
        issuer.set_status(docs[2]["id"], "suspension")
    documents = publish(issuer, status_server)
    cache = tmp_path_factory.mktemp("thirdparty_cache")
    loopback = FetchLimits(allow_private=True)
    # a did:key has no DID document to name its registry: the verifier pins it
    registry = academy_ledger.registry.address if kind == "did:key" else None
    fill_cache(cache, [*anchored, *signed_only], academy_ledger.rpc_url, limits=loopback,
               registry=registry, did_web_http=True)  # fmt: skip
    lists = {k: v for k, v in documents.items() if not k.startswith("did:")}
    return {
        "kind": kind,
        "issuer": issuer,
        "key": key,
        "anchored": anchored,
        "signed_only": signed_only,
        "documents": documents,
        "lists": lists,
        "cache": cache,
        "registry": registry,
    }


EXPECTED = ["valid", "revoked", "suspended"]


@pytest.mark.parametrize("kind", ["anchored", "signed_only"])
def test_same_verdicts_as_academy_verify(world, kind: str, tmp_path: Path) -> None:
    docs = world[kind]
    theirs = node_verify({"documents": world["documents"], "credentials": docs})["credentials"]
    ours = [academy_verdict(d, world["cache"], tmp_path, registry=world["registry"]) for d in docs]
    assert ours == EXPECTED
    assert [t["verdict"] for t in theirs] == EXPECTED, theirs
    for doc in docs:
        assert doc["issuer"]["id"] == world["issuer"].id
        assert doc["issuer"]["id"].startswith(world["kind"] + ":")
    for t in theirs:
        suites = sorted(p["cryptosuite"] for p in t["proofs"] if p["verified"])
        assert suites == ["eddsa-jcs-2022", "eddsa-rdfc-2022"], t
        purposes = sorted(s["purpose"] for s in t["statuses"])
        assert purposes == ["revocation", "suspension"]


def _tampered(world) -> list[dict]:
    field = copy.deepcopy(world["signed_only"][0])
    field["credentialSubject"]["achievement"]["name"] = "Advanced consensus"
    stranger = IssuerKey.generate()
    resigned = proofs.sign(
        proofs.without_proof(world["signed_only"][0]), stranger, "2026-06-01T00:00:00Z"
    )
    swapped_issuer = copy.deepcopy(world["signed_only"][0])
    swapped_issuer["issuer"]["id"] = f"did:key:{stranger.multikey}"
    return [field, resigned, swapped_issuer]


def test_forgeries_are_refused_by_both(world, tmp_path: Path) -> None:
    docs = _tampered(world)
    theirs = node_verify({"documents": world["documents"], "credentials": docs})["credentials"]
    ours = [academy_verdict(d, world["cache"], tmp_path, registry=world["registry"]) for d in docs]
    assert ours == ["invalid"] * len(docs)
    assert [t["verdict"] for t in theirs] == ["invalid"] * len(docs), theirs


def test_a_status_list_signed_by_a_stranger_is_refused_by_both(world, tmp_path: Path) -> None:
    """The list of a revoked credential, cleared and re-signed by another key: academy refuses
    it (the list is checked against the issuer's keys only), and so does the library (the
    list's issuer must control the key that signed it). Accepted, it would say "valid"."""
    revoked = world["signed_only"][1]
    url = revoked["credentialStatus"][0]["statusListCredential"]
    forged = proofs.without_proof(copy.deepcopy(world["lists"][url]))
    forged["credentialSubject"]["encodedList"] = StatusList().encode()
    forged = proofs.sign(forged, IssuerKey.generate(), "2026-06-01T00:00:00Z")
    theirs = node_verify(
        {"documents": {**world["documents"], url: forged}, "credentials": [revoked]}
    )
    assert theirs["credentials"][0]["verdict"] == "invalid", theirs
    cache = tmp_path / "cache"
    shutil.copytree(world["cache"], cache)
    (cache / "status" / cache_name(url)).write_text(json.dumps(forged))
    assert academy_verdict(revoked, cache, tmp_path, registry=world["registry"]) == "invalid"


def test_strict_json_ld_accepts_what_academy_issues(world) -> None:
    docs = [*world["anchored"], *world["signed_only"], *world["documents"].values()]
    expanded = node_verify({"expand": docs})["expand"]
    assert all(e["ok"] for e in expanded), expanded


def test_strict_json_ld_refuses_undefined_terms(world) -> None:
    undefined = copy.deepcopy(world["signed_only"][0])
    undefined["credentialSubject"]["favouriteColour"] = "blue"
    relative_type = copy.deepcopy(next(iter(world["lists"].values())))
    relative_type["type"] = [*relative_type["type"], "Mystery"]
    expanded = node_verify({"expand": [undefined, relative_type]})["expand"]
    assert [e["ok"] for e in expanded] == [False, False], expanded


# -- where the verdicts differ, by academy's policy -----------------------------------------------


@pytest.mark.parametrize("suite", [proofs.JCS_SUITE, proofs.RDFC_SUITE])
def test_one_proof_stripped_is_refused_by_academy_alone(world, suite: str, tmp_path) -> None:
    """The library checks the proofs it is given, and one genuine proof verifies; academy
    requires both, so a document with one stripped is refused, never checked less."""
    docs = []
    for kind in ("anchored", "signed_only"):
        doc = copy.deepcopy(world[kind][0])
        doc["proof"] = [p for p in doc["proof"] if p.get("cryptosuite") != suite]
        docs.append(doc)
    theirs = node_verify({"documents": world["documents"], "credentials": docs})["credentials"]
    assert [t["verdict"] for t in theirs] == ["valid", "valid"], theirs
    for doc in docs:
        assert (
            academy_verdict(doc, world["cache"], tmp_path, registry=world["registry"]) == "invalid"
        )


@pytest.fixture(scope="module")
def revoked_key(academy_ledger, status_server, tmp_path_factory):
    """A did:web institution whose first key K1 signed an anchored credential, then was
    rotated out and revoked on the ledger; after that, K1 signs a backdated credential with no
    anchor, as whoever stole it could."""
    base = status_server.base_url + "/thirdparty/revoked"
    issuer = Issuer(did_web_for(base), "Revoked Key Institute", base + "/status",
                    academy_ledger.registry)  # fmt: skip
    # dated apart by whole seconds, as proofs and the ledger count time
    now = now_utc()
    k1 = issuer.add_key(now - dt.timedelta(seconds=120))
    (before,) = issuer.issue([draft(issuer, 10)], created=now - dt.timedelta(seconds=90))
    assert before["proof"][0]["verificationMethod"] == issuer.method(k1)
    issuer.add_key(now - dt.timedelta(seconds=60))
    issuer.revoke_key(k1.multikey, now - dt.timedelta(seconds=30))  # after the ledger saw it
    # dated when K1 was still the current key, as a thief would date it
    backdated = proofs.sign(draft(issuer, 11), k1, before["proof"][0]["created"], issuer.method(k1))
    documents = publish(issuer, status_server)
    cache = tmp_path_factory.mktemp("thirdparty_revoked_cache")
    fill_cache(cache, [before, backdated], academy_ledger.rpc_url,
               limits=FetchLimits(allow_private=True), did_web_http=True)  # fmt: skip
    return {"issuer": issuer, "k1": k1, "before": before, "backdated": backdated,
            "documents": documents, "cache": cache}  # fmt: skip


def test_a_revoked_key_stays_listed_as_revoked(revoked_key) -> None:
    served = revoked_key["documents"][revoked_key["issuer"].id]
    method = revoked_key["issuer"].method(revoked_key["k1"])
    assert method in served["assertionMethod"]
    (entry,) = [m for m in served["verificationMethod"] if m["id"] == method]
    assert "revoked" in entry


def test_what_a_revoked_key_signed_before_the_ledger_saw_it_verifies_in_both(
    revoked_key, tmp_path
) -> None:
    doc = revoked_key["before"]
    theirs = node_verify({"documents": revoked_key["documents"], "credentials": [doc]})
    assert theirs["credentials"][0]["verdict"] == "valid", theirs
    assert academy_verdict(doc, revoked_key["cache"], tmp_path) == "valid"


def test_a_revoked_key_s_later_signature_is_refused_by_academy_alone(revoked_key, tmp_path) -> None:
    """The library does not read ``revoked``; academy refuses the key from its revocation on,
    with or without ``--key``."""
    doc = revoked_key["backdated"]
    theirs = node_verify({"documents": revoked_key["documents"], "credentials": [doc]})
    assert theirs["credentials"][0]["verdict"] == "valid", theirs
    assert academy_verdict(doc, revoked_key["cache"], tmp_path) == "invalid"
    multikey = revoked_key["k1"].multikey
    assert academy_verdict(doc, revoked_key["cache"], tmp_path, key=multikey) == "invalid"
