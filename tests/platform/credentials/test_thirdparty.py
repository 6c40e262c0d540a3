"""A third party agrees: Digital Bazaar's VC 2.0 stack (``@digitalbazaar/vc``, ``data-integrity``,
the eddsa-jcs-2022 and eddsa-rdfc-2022 cryptosuites, ``vc-bitstring-status-list``, jsonld.js in
safe mode; pinned in package-lock.json) verifies what academy issues, and reaches the verdicts
``academy verify`` reaches, status included.

The issuer here is a ``did:key`` (the offline path: the key is the identifier, so the library's
"issuer must be the controller of the verification method" rule can hold without a web server).
Its credentials are issued twice over: signature-only, and anchored on a real academy ledger. The
status lists are published on a loopback server; ``academy verify --offline`` reads them from a
cache filled from that server, the JavaScript verifier from the same documents through its loader
(``thirdparty/verify.mjs``), which fetches nothing and also serves did:web documents when given.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from academy.cli import app
from academy.credentials import proofs
from academy.credentials.credential import PINNED_CONTEXT_FILES
from academy.credentials.fetch import FetchLimits
from academy.credentials.issuer import Issuer
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
    body = {
        "contexts": {url: str(CONTEXTS / name) for url, name in PINNED_CONTEXT_FILES.items()},
        **request,
    }
    done = subprocess.run(
        [node, str(SCRIPT)], input=json.dumps(body), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def academy_verdict(doc: dict, cache: Path, tmp: Path) -> str:
    path = tmp / "credential.json"
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(
        app, ["verify", str(path), "--offline", "--cache", str(cache), "--json"]
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


@pytest.fixture(scope="module")
def world(academy_ledger, status_server, tmp_path_factory):
    key = IssuerKey.generate()
    issuer = Issuer(
        f"did:key:{key.multikey}",
        "Third Party Check Institute",
        status_server.base_url + "/thirdparty/status",
        academy_ledger.registry,
    )
    issuer.add_key(key=key)
    anchored = issuer.issue([draft(issuer, n) for n in range(3)])
    plain = Issuer(issuer.id, issuer.name, status_server.base_url + "/thirdparty/status")
    plain.history, plain.lists, plain.by_credential = (
        issuer.history,
        issuer.lists,
        issuer.by_credential,
    )
    signed_only = plain.issue([draft(issuer, n) for n in range(3, 6)])
    for docs in (anchored, signed_only):
        issuer.set_status(docs[1]["id"], "revocation")
        issuer.set_status(docs[2]["id"], "suspension")
    lists = {}
    for purpose in ("revocation", "suspension"):
        lst = issuer.status_list(purpose)
        lists[lst["id"]] = lst
        status_server.publish(lst["id"], lst)
    cache = tmp_path_factory.mktemp("thirdparty_cache")
    loopback = FetchLimits(allow_private=True)
    fill_cache(cache, [*anchored, *signed_only], academy_ledger.rpc_url, limits=loopback)
    return {
        "issuer": issuer,
        "key": key,
        "anchored": anchored,
        "signed_only": signed_only,
        "lists": lists,
        "cache": cache,
    }


EXPECTED = ["valid", "revoked", "suspended"]


@pytest.mark.parametrize("kind", ["anchored", "signed_only"])
def test_same_verdicts_as_academy_verify(world, kind: str, tmp_path: Path) -> None:
    docs = world[kind]
    theirs = node_verify({"documents": world["lists"], "credentials": docs})["credentials"]
    ours = [academy_verdict(d, world["cache"], tmp_path) for d in docs]
    assert ours == EXPECTED
    assert [t["verdict"] for t in theirs] == EXPECTED, theirs
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
    theirs = node_verify({"documents": world["lists"], "credentials": docs})["credentials"]
    ours = [academy_verdict(d, world["cache"], tmp_path) for d in docs]
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
    theirs = node_verify({"documents": {**world["lists"], url: forged}, "credentials": [revoked]})
    assert theirs["credentials"][0]["verdict"] == "invalid", theirs
    cache = tmp_path / "cache"
    shutil.copytree(world["cache"], cache)
    (cache / "status" / cache_name(url)).write_text(json.dumps(forged))
    assert academy_verdict(revoked, cache, tmp_path) == "invalid"


def test_strict_json_ld_accepts_what_academy_issues(world) -> None:
    docs = [*world["anchored"], *world["signed_only"], *world["lists"].values()]
    expanded = node_verify({"expand": docs})["expand"]
    assert all(e["ok"] for e in expanded), expanded


def test_strict_json_ld_refuses_undefined_terms(world) -> None:
    undefined = copy.deepcopy(world["signed_only"][0])
    undefined["credentialSubject"]["favouriteColour"] = "blue"
    relative_type = copy.deepcopy(next(iter(world["lists"].values())))
    relative_type["type"] = [*relative_type["type"], "Mystery"]
    expanded = node_verify({"expand": [undefined, relative_type]})["expand"]
    assert [e["ok"] for e in expanded] == [False, False], expanded
