"""Certificates inside the platform, on a real PostgreSQL (SQLite is exercised by the page
test), against a real academy ledger: learners' notebooks are graded by the real grader, the course's completion rule makes
two of three eligible, the institution admin issues one anchored batch, a learner downloads and
shares theirs, anyone verifies it through the public API, the admin revokes one."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from academy.app import create_app
from academy.credentials.credential import ACADEMY_CONTEXT, pinned_context_bytes
from academy.credentials.did import did_web_url, parse_did_document
from academy.db import referenced, session_scope, upgrade
from academy.models import LatePolicy, Role, id_of
from academy.services.access import ALL_SCOPES, Principal
from academy.services.courses import release_lab
from academy.services.credentials import auto_issue_once
from academy.services.enrollment import enroll
from academy.services.identity import (
    create_institution,
    ensure_user,
    grant_role,
    issue_token,
    roles_of,
)
from academy.settings import Settings
from fastapi.testclient import TestClient

from labs.minichain.waiting import wait_until
from tests.platform.academy.builders import COURSE, LAB, answer, uni_cohort, write_course
from tests.platform.appserver import academy_state

API = "/services/academy/api"
PG_ADMIN = os.environ.get("ACADEMY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LEARNERS = ("ada", "bo", "cy")  # cy gets the second lab wrong: not eligible


@pytest.fixture(params=["postgresql"])
def platform(request, tmp_path: Path, academy_ledger):
    values: dict = {
        "state_dir": tmp_path / "state",
        "courses_dir": tmp_path / "courses",
        "grade_workers": 1,
        "grade_poll_seconds": 0.2,
        "cell_timeout": 20.0,
        "credentials_auto_seconds": 0,
        "ledger_rpc_url": academy_ledger.rpc_url,
        "ledger_private_key": academy_ledger.cfg.accounts()[1]["private_key"],
        "public_url": "https://academy.example",
    }
    write_course(values["courses_dir"])
    dbname = None
    if request.param == "postgresql":
        dbname = f"certs_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        host = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        values["database_url"] = f"{host}/{dbname}"
    settings = Settings(**values)
    upgrade(settings)
    client = TestClient(create_app(settings))
    client.__enter__()
    try:
        yield build(settings, client)
    finally:
        client.__exit__(None, None, None)
        if dbname:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def build(settings: Settings, client: TestClient) -> dict:
    engine = academy_state(client).engine
    w: dict = {"client": client, "settings": settings, "tokens": {}, "assignments": {}}
    with session_scope(engine) as session:
        inst, cohort = uni_cohort(session, settings.courses_dir)
        other = create_institution(session, None, "other", "Other College")
        admin, _ = ensure_user(session, "admin")
        grant_role(session, None, admin, Role.institution_admin, inst)
        stranger, _ = ensure_user(session, "stranger-admin")
        grant_role(session, None, stranger, Role.institution_admin, other)
        actor = Principal(admin, roles_of(session, id_of(admin)), ALL_SCOPES)
        for lab in (LAB, "second"):
            a = release_lab(session, settings, actor, cohort, lab, opens_at=None, due_at=None,
                            late_policy=LatePolicy.accept, late_penalty_per_day=0.0)  # fmt: skip
            w["assignments"][lab] = a.id
        users = {"admin": admin, "stranger": stranger}
        for name in LEARNERS:
            user, _ = ensure_user(session, name)
            enroll(session, None, cohort, user)
            users[name] = user
        for name, user in users.items():
            w["tokens"][name] = issue_token(session, user, sorted(ALL_SCOPES), "test")[1]
        w["cohort"] = cohort.id
    return w


def headers(w: dict, who: str) -> dict:
    return {"Authorization": f"Bearer {w['tokens'][who]}"}


def grade_everyone(w: dict) -> None:
    client, pending = w["client"], []
    for lab, aid in w["assignments"].items():
        for name in LEARNERS:
            r = client.get(f"{API}/assignments/{aid}/release", headers=headers(w, name))
            files = {f["path"]: base64.b64decode(f["content_base64"]) for f in r.json()["files"]}
            nb = json.loads(next(v for k, v in files.items() if k.endswith(".ipynb")))
            correct = not (name == "cy" and lab == "second")
            r = client.post(
                f"{API}/assignments/{aid}/submissions",
                headers=headers(w, name),
                files={"notebook": (f"{lab}.ipynb", answer(nb, correct), "application/json")},
            )
            assert r.status_code == 202, r.text
            pending.append((name, r.json()["id"]))
    deadline = time.monotonic() + 180
    for name, sid in pending:

        def settled(name: str = name, sid: int = sid) -> dict | None:
            body = client.get(f"{API}/submissions/{sid}", headers=headers(w, name)).json()
            return body if body["status"] in ("graded", "failed") else None

        body = wait_until(
            settled, deadline - time.monotonic(), interval=0.2, message=f"{sid} not graded"
        )
        assert body["status"] == "graded", body


def test_issue_share_verify_revoke(platform) -> None:
    w, client = platform, platform["client"]
    grade_everyone(w)
    cohort = w["cohort"]
    r = client.get(f"{API}/credentials/eligible", params={"cohort_id": cohort},
                   headers=headers(w, "admin"))  # fmt: skip
    assert sorted(e["learner"] for e in r.json()) == ["ada", "bo"], r.text
    denied = client.post(f"{API}/credentials/issue", json={"cohort_id": cohort},
                         headers=headers(w, "stranger"))  # fmt: skip
    assert denied.status_code == 403
    learner_try = client.post(f"{API}/credentials/issue", json={"cohort_id": cohort},
                              headers=headers(w, "ada"))  # fmt: skip
    assert learner_try.status_code == 403
    not_eligible = client.post(f"{API}/credentials/issue",
                               json={"cohort_id": cohort, "learners": ["cy"]},
                               headers=headers(w, "admin"))  # fmt: skip
    assert not_eligible.status_code == 422 and "cy" in not_eligible.json()["detail"]

    r = client.post(f"{API}/credentials/issue", json={"cohort_id": cohort, "learners": ["ada"]},
                    headers=headers(w, "admin"))  # fmt: skip
    assert r.status_code == 201, r.text
    batch = r.json()
    assert batch["count"] == 1 and batch["anchored"] and batch["ledger"]["blockNumber"] > 0
    # the institution turns on automatic issuing: the next round issues to bo, in its own batch
    r = client.put(f"{API}/credentials/policy", json={"institution": "uni", "auto_issue": True},
                   headers=headers(w, "admin"))  # fmt: skip
    assert r.json()["auto_issue"] is True
    engine = academy_state(client).engine
    assert auto_issue_once(w["settings"], engine) == 1
    assert auto_issue_once(w["settings"], engine) == 0
    again = client.get(f"{API}/credentials/eligible", params={"cohort_id": cohort},
                       headers=headers(w, "admin"))  # fmt: skip
    assert again.json() == []

    mine = client.get(f"{API}/credentials/mine", headers=headers(w, "ada")).json()
    assert [c["course"] for c in mine] == [COURSE]
    uid = mine[0]["id"]
    doc = client.get(f"{API}/credentials/{uid}", headers=headers(w, "ada"))
    assert doc.status_code == 200 and "attachment" in doc.headers["content-disposition"]
    cred = doc.json()
    assert "OpenBadgeCredential" in cred["type"]
    assert cred["credentialSubject"]["achievement"]["alignment"][0]["targetName"] == "primary"
    assert [e["description"] for e in cred["evidence"]] == ["SHA-256: 3 / 3", "Second lab: 3 / 3"]
    # another learner's certificate is not there for bo, like another's submission
    assert client.get(f"{API}/credentials/{uid}", headers=headers(w, "bo")).status_code == 404

    share = client.post(f"{API}/credentials/{uid}/share", headers=headers(w, "ada")).json()
    assert share["share_url"].startswith("https://academy.example/services/academy/verify?share=")
    public = client.get(f"{API}/credentials/shared/{share['token']}")  # no login
    assert public.status_code == 200 and public.json() == cred

    report = client.post(f"{API}/credentials/verify", json=cred).json()  # no login
    assert report["verdict"] == "valid", report
    assert [c["outcome"] for c in report["checks"]] == ["pass"] * 7
    anchor_check = next(c for c in report["checks"] if c["name"] == "ledger anchor")
    assert "genesis pinned" in anchor_check["detail"]  # the one academy recorded at deploy

    tampered = json.loads(json.dumps(cred))
    tampered["credentialSubject"]["achievement"]["name"] = "Something else"
    report = client.post(f"{API}/credentials/verify", json=tampered).json()
    assert report["verdict"] == "invalid"
    failed = [c["name"] for c in report["checks"] if c["outcome"] == "fail"]
    assert failed[0] == "signature" and "merkle inclusion" in failed

    bo_uid = client.get(f"{API}/credentials/mine", headers=headers(w, "bo")).json()[0]["id"]
    r = client.post(f"{API}/credentials/{bo_uid}/status", json={"purpose": "revocation"},
                    headers=headers(w, "admin"))  # fmt: skip
    assert r.status_code == 200 and r.json()["revoked"]
    bo_doc = client.get(f"{API}/credentials/{bo_uid}", headers=headers(w, "bo")).json()
    assert client.post(f"{API}/credentials/verify", json=bo_doc).json()["verdict"] == "revoked"
    assert client.post(f"{API}/credentials/verify", json=cred).json()["verdict"] == "valid"

    url = cred["credentialStatus"][0]["statusListCredential"]
    lst = client.get(url.replace("https://academy.example", ""))  # public, signed
    assert lst.status_code == 200 and "BitstringStatusListCredential" in lst.json()["type"]
    # the issuer is the institution's did:web; its DID document is served where did:web says
    issuer_did = cred["issuer"]["id"]
    home = "academy.example:services:academy:api:credentials:issuers:uni"
    assert issuer_did == f"did:web:{home}"
    where = did_web_url(issuer_did)
    assert where == "https://academy.example/services/academy/api/credentials/issuers/uni/did.json"
    served = client.get(where.removeprefix("https://academy.example"))
    assert served.status_code == 200 and served.headers["content-type"] == "application/did+ld+json"
    profile = served.json()
    assert profile == client.get(f"{API}/credentials/issuers/uni").json()
    assert profile["id"] == issuer_did
    assert profile["verificationMethod"][0]["type"] == "Multikey"
    served = client.get(f"{API}/credentials/contexts/v1")  # academy's own context, public
    assert served.headers["content-type"].startswith("application/ld+json")
    assert served.content == pinned_context_bytes(ACADEMY_CONTEXT)
    anchor = next(p for p in cred["proof"] if p["type"] == "LedgerAnchorProof")
    signatures = [p for p in cred["proof"] if p["type"] == "DataIntegrityProof"]
    assert len(signatures) == 2
    for proof in signatures:
        assert proof["verificationMethod"] in profile["assertionMethod"]
        assert proof["verificationMethod"].startswith(issuer_did + "#")
    binding = parse_did_document(profile, issuer_did).ledger
    assert binding is not None
    assert binding.registry == anchor["ledger"]["registry"]
    assert binding.genesis_hash == anchor["ledger"]["genesisHash"]
    # rotating the key: what the old key signed stays valid, new issues use the new key
    old_key = cred["proof"][0]["verificationMethod"]
    r = client.post(f"{API}/credentials/issuers/uni/keys", headers=headers(w, "admin"))
    assert r.status_code == 201 and r.json()["multikey"] not in old_key
    assert client.post(f"{API}/credentials/verify", json=cred).json()["verdict"] == "valid"
    keys = client.get(f"{API}/credentials/issuers/uni").json()["verificationMethod"]
    assert len(keys) == 2 and "expires" in keys[0] and "expires" not in keys[1]
    page = client.get("/services/academy/verify")
    assert page.status_code == 200 and 'id="verify-form"' in page.text  # served by academy
    garbage = client.post(f"{API}/credentials/verify", content=b"{nope",
                          headers={"Content-Type": "application/json"})  # fmt: skip
    assert garbage.status_code == 422 and garbage.json()["detail"]


def test_without_a_ledger_credentials_are_signed_and_checked_against_the_profile(
    tmp_path: Path,
) -> None:
    """No ledger configured (the embedded default): issued credentials are signed, not anchored;
    the verify API takes the issuer's keys from its profile and says the anchor checks are n/a."""
    from academy.models import CredentialRecord, Institution, User
    from academy.services import credentials as svc
    from sqlmodel import select

    settings = Settings(
        state_dir=tmp_path / "state", courses_dir=tmp_path / "courses", grade_workers=0,
        credentials_auto_seconds=0,
    )  # fmt: skip
    write_course(settings.courses_dir)
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        engine = academy_state(client).engine
        with session_scope(engine) as session:
            inst, cohort = uni_cohort(session, settings.courses_dir)
            user, _ = ensure_user(session, "ada")
            batch = svc.issue_batch(
                session, settings, referenced(session, Institution, id_of(inst)),
                [(cohort, user, {LAB: (3.0, 3.0), "second": (3.0, 3.0)})], None,
            )  # fmt: skip
            assert not batch.anchored and "ACADEMY_LEDGER_RPC_URL" in batch.note
            doc = json.loads(session.exec(select(CredentialRecord)).one().document)
            assert session.exec(select(User).where(User.username == "ada")).one()
            key_file = settings.state_dir / "credentials.secret"
            assert key_file.stat().st_mode & 0o077 == 0
        report = client.post(f"{API}/credentials/verify", json=doc).json()
        outcomes = {c["name"]: c["outcome"] for c in report["checks"]}
        assert report["verdict"] == "valid", report
        assert outcomes["issuer key"] == "pass"
        assert outcomes["merkle inclusion"] == outcomes["ledger anchor"] == "n/a"
        assert outcomes["status"] == "pass"
