"""End to end on a real academy ledger: learners' notebooks are graded by the real grader, the
course's completion rule picks who completed it, their certificates are issued and anchored as
one batch, one is revoked; `academy verify` says valid for the others and revoked for that one,
online and offline (offline inside a network namespace with no usable interface at all)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from academy.cli import app
from academy.credentials.completion import Course
from academy.credentials.did import did_web_for, did_web_url
from academy.credentials.issuer import Issuer
from academy.credentials.verify import CacheSources, verify_credential
from typer.testing import CliRunner

from grader.autograde import autograde
from grader.release import release
from tests.grader import coursegen

COURSE_TOML = """
[course]
id = "ledger-basics"
title = "Ledger basics"
summary = "Hashes, Merkle trees and mining, by hand."
level = "blockchain engineering technician: primary"
order = 1

[completion]
rule = "all_labs_at_least"
threshold = 0.6

[[labs]]
id = "{lab}"
title = "Hashing and blocks"
"""
LEARNERS = ["correct", "stderr_noise", "partly_wrong", "raising"]
SAME_AS_CORRECT = ["li_na", "omar"]  # two more learners who hand in the correct notebooks
# the status lists and the issuer's DID document of these tests are served on loopback http
LOOPBACK = ("--allow-private-fetch", "--did-web-http")


def academy(*args: str) -> Any:
    """The `academy` command run in this process (cheap); output and exit code as a user sees."""
    return CliRunner().invoke(app, list(args))


def academy_offline_in_netns(*args: str) -> subprocess.CompletedProcess:
    """The `academy` command in a fresh network namespace: no interface is up, not even lo."""
    cmd = ["unshare", "--net", sys.executable, "-m", "academy.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def issued(academy_ledger, status_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs_e2e")
    course_dir = folder / "course"
    coursegen.write_source(course_dir)
    release(course_dir, coursegen.ASSIGNMENT)
    coursegen.write_submissions(course_dir, LEARNERS)
    for name in SAME_AS_CORRECT:
        shutil.copytree(course_dir / "submitted" / "correct", course_dir / "submitted" / name)
    (course_dir / "course.toml").write_text(COURSE_TOML.format(lab=coursegen.ASSIGNMENT))
    course = Course.from_toml(course_dir / "course.toml")
    graded = autograde(course_dir, coursegen.ASSIGNMENT, workers=2)
    scores = {}
    for learner, result in graded.items():
        cells = [c for nb in result.notebooks.values() for c in nb.values()]
        points = (sum(c.points or 0 for c in cells), sum(c.max_points for c in cells))
        scores[learner] = {coursegen.ASSIGNMENT: points}
    eligible = [name for name in sorted(scores) if course.completed(scores[name])]
    assert eligible == ["correct", "li_na", "omar", "stderr_noise"], scores

    issuer = Issuer(
        did_web_for(status_server.base_url + "/e2e"),
        "End-to-End Institute",
        status_server.base_url + "/e2e/status",
        academy_ledger.registry,
    )
    issuer.add_key()
    achievement = {
        "id": f"https://academy.example/courses/{course.id}",
        "name": course.title,
        "description": course.summary,
        "criteria": course.criteria(),
        "level": course.level,
        "course": course.id,
    }
    drafts = [
        issuer.draft(
            f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
            name,
            achievement,
            [
                {
                    "name": course.labs[0][1],
                    "score": scores[name][lab][0],
                    "max": scores[name][lab][1],
                }
                for lab in scores[name]
            ],  # fmt: skip
            valid_from="2026-01-01T00:00:00Z",
        )
        for i, name in enumerate(eligible)
    ]
    docs = issuer.issue(drafts)
    revoked = docs[1]["id"]
    issuer.set_status(revoked, "revocation")
    for purpose in ("revocation", "suspension"):
        status_server.publish(issuer.lists[purpose].url, issuer.status_list(purpose))
    status_server.publish(did_web_url(issuer.id, http_loopback=True), issuer.did_document())
    files = []
    for doc in docs:
        path = folder / f"{doc['id'].rsplit(':', 1)[1]}.json"
        path.write_text(json.dumps(doc, indent=2))
        files.append(path)
    return {"docs": docs, "files": files, "revoked": revoked, "folder": folder}


def expected(issued, doc) -> str:
    return "revoked" if doc["id"] == issued["revoked"] else "valid"


def test_batch_is_one_anchor(issued) -> None:
    roots = {p["merkleRoot"] for d in issued["docs"] for p in d["proof"] if "merkleRoot" in p}
    assert len(roots) == 1


def test_cli_online_then_offline_in_a_network_namespace(issued, academy_ledger) -> None:
    files = list(map(str, issued["files"]))
    # the status lists live on a loopback test server: fetching there must be asked for
    run = academy("verify", *files, "--rpc", academy_ledger.rpc_url)
    assert run.exit_code == 1 and "private, loopback or link-local" in run.output, run.output
    assert run.output.count("FAIL  status") == len(files), run.output
    run = academy("verify", *files, "--rpc", academy_ledger.rpc_url, *LOOPBACK)
    assert run.exit_code == 1, run.output  # one of them is revoked
    verdicts = [line.split()[1] for line in run.output.splitlines() if line.startswith("verdict")]
    assert verdicts == [expected(issued, d) for d in issued["docs"]], run.output
    for name in ("schema", "dates", "signature", "issuer key", "merkle inclusion", "ledger anchor"):
        assert run.output.count(f"PASS  {name}") == len(files)
    assert run.output.count("FAIL  status") == 1
    valid = [str(p) for p, d in zip(issued["files"], issued["docs"], strict=True)
             if expected(issued, d) == "valid"]  # fmt: skip
    assert academy("verify", *valid, "--rpc", academy_ledger.rpc_url, *LOOPBACK).exit_code == 0

    cache = issued["folder"] / "cache"
    run = academy("credentials", "cache", *files, "--cache", str(cache),
                  "--rpc", academy_ledger.rpc_url, *LOOPBACK)  # fmt: skip
    assert run.exit_code == 0, run.output
    probe = subprocess.run(
        ["unshare", "--net", sys.executable, "-c",
         f"import urllib.request as u; u.urlopen('{academy_ledger.rpc_url}', timeout=2)"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.returncode != 0  # inside the namespace even the ledger on loopback is gone
    run = academy_offline_in_netns("verify", *files, "--offline", "--cache", str(cache))
    verdicts = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("verdict")]
    assert verdicts == [expected(issued, d) for d in issued["docs"]], run.stdout + run.stderr
    assert run.stdout.count("(offline)") == len(files)
    assert run.stdout.count("PASS  ledger anchor") == len(files)
    assert run.stdout.count("FAIL  status") == 1 and run.returncode == 1


def test_a_pinned_genesis_refuses_another_ledger(issued, academy_ledger) -> None:
    """Whoever serves the evidence could serve a whole chain of its own: with the ledger's genesis
    pinned, evidence of any other genesis fails; not pinned by the verifier, the genesis the
    issuer's DID document names pins it, and the report says so."""
    good = academy_ledger.registry.genesis_hash()
    wrong = "0x" + "ab" * 32
    doc = str(issued["files"][0])
    run = academy("verify", doc, "--rpc", academy_ledger.rpc_url, "--genesis", good, *LOOPBACK)
    assert run.exit_code == 0 and "genesis pinned" in run.output, run.output
    run = academy("verify", doc, "--rpc", academy_ledger.rpc_url, *LOOPBACK)
    assert run.exit_code == 0 and "pinned by the issuer's DID document" in run.output, run.output
    run = academy("verify", doc, "--rpc", academy_ledger.rpc_url, "--genesis", wrong, *LOOPBACK)
    assert run.exit_code == 1, run.output
    for check in ("issuer key", "ledger anchor"):
        line = next(x for x in run.output.splitlines() if f"FAIL  {check}" in x)
        assert "not the trusted 0xabababab" in line, line
    cache = issued["folder"] / "cache"
    assert cache.exists(), "runs after the CLI test filled the cache"
    run = academy("verify", doc, "--offline", "--cache", str(cache), "--genesis", wrong)
    assert run.exit_code == 1 and "FAIL  ledger anchor" in run.output, run.output
    run = academy("credentials", "cache", doc, "--cache", str(issued["folder"] / "other"),
                  "--rpc", academy_ledger.rpc_url, "--genesis", wrong, *LOOPBACK)  # fmt: skip
    assert run.exit_code == 2 and "another ledger" in run.output, run.output


def test_offline_verification_opens_no_socket(issued, monkeypatch) -> None:
    cache = issued["folder"] / "cache"
    assert cache.exists(), "runs after the CLI test filled the cache"
    opened = []

    class NoSocket(socket.socket):
        def __init__(self, *args, **kwargs) -> None:
            opened.append(args)
            raise OSError("offline verification must not open sockets")

    monkeypatch.setattr(socket, "socket", NoSocket)
    monkeypatch.setattr(socket, "create_connection", NoSocket)
    sources = CacheSources(cache)
    verdicts = [verify_credential(d, sources).verdict for d in issued["docs"]]
    assert verdicts == [expected(issued, d) for d in issued["docs"]]
    assert opened == []


def test_cli_reports_json_with_every_check(issued) -> None:
    cache = issued["folder"] / "cache"
    run = academy("verify", str(issued["files"][0]), "--json", "--offline", "--cache", str(cache))
    report = json.loads(run.output)
    assert [c["name"] for c in report["checks"]] == [
        "schema", "dates", "signature", "issuer key", "merkle inclusion", "ledger anchor",
        "status",
    ]  # fmt: skip
    assert report["verdict"] == "valid" and run.exit_code == 0


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    run = academy("verify", str(bad), "--offline", "--cache", str(tmp_path))
    assert run.exit_code == 2 and "not valid JSON" in run.output
    assert run.output.strip().count("\n") == 0
    run = academy("verify", str(tmp_path / "missing.json"))
    assert run.exit_code == 2 and "no such file" in run.output


def test_cli_w3c_vector_against_key(tmp_path: Path) -> None:
    """The W3C's published eddsa-jcs-2022 and eddsa-rdfc-2022 proofs of one credential, by one
    key, as a proof set: what academy requires. Either proof alone is refused."""
    vectors = Path(__file__).parent / "vectors" / "w3c-vc-di-eddsa"
    jcs = json.loads((vectors / "369f0f0" / "signedJCS.json").read_text())
    rdfc = json.loads((vectors / "rdfc-abb673e" / "signedDataInt.json").read_text())
    both = tmp_path / "both.json"
    both.write_text(json.dumps({**jcs, "proof": [jcs["proof"], rdfc["proof"]]}))
    key = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
    run = academy("verify", str(both), "--key", key)
    assert run.exit_code == 0, run.output
    assert "n/a   merkle inclusion" in run.output and "n/a   ledger anchor" in run.output
    assert "n/a   status" in run.output
    for alone, missing in ((jcs, "eddsa-rdfc-2022"), (rdfc, "eddsa-jcs-2022")):
        one = tmp_path / "one.json"
        one.write_text(json.dumps(alone))
        run = academy("verify", str(one), "--key", key)
        assert run.exit_code == 1 and f"no {missing} proof" in run.output, run.output
    other = "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    run = academy("verify", str(both), "--key", other)
    assert run.exit_code == 1 and "FAIL  signature" in run.output
    run = academy("verify", str(both))  # nobody says whose key signed
    assert run.exit_code == 1 and "FAIL  issuer key" in run.output


def test_the_ledger_academy_up_runs_anchors_with_checkable_commits(tmp_path: Path) -> None:
    """`academy up` runs a one-validator TBFT ledger in STATE_DIR/ledger (unless
    ACADEMY_LEDGER_RPC_URL names one): its commits carry the validator's signature, which the
    verifier checks as it does a 4-validator ledger's quorum."""
    from academy.credentials.ledger import (
        Registry,
        facts_from_bundle,
        fetch_ledger_bundle,
        start_local_ledger,
    )

    from labs.minichain.network import stop_network

    folder = tmp_path / "ledger"
    try:
        rpc, key = start_local_ledger(folder)
        registry = Registry.deploy(rpc, key)
        tx = registry.anchor("https://academy.example/issuers/up", b"\x07" * 32, 3)
        facts = facts_from_bundle(fetch_ledger_bundle(rpc, registry.address))
        assert facts.genesis_hash == registry.genesis_hash()
        assert facts.batches[b"\x07" * 32].block_number == tx.block_number
    finally:
        stop_network(folder)
