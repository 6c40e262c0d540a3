"""The smaller web findings of issue 21 (finding 7): security headers on every response, Secure
cookies under https, no text from the URL on the dashboard, ``opens_at`` enforced for learners,
random certificate subject ids."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid

import httpx
import pytest
from academy.db import referenced, session_scope
from academy.models import Cohort
from academy.services import credentials as svc
from fastapi.testclient import TestClient

from .builders import LAB
from .conftest import BASE, World, WorldOn

PAGES = BASE.removesuffix("/api")
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


@pytest.fixture
def world(world_on: WorldOn) -> World:
    return world_on("sqlite", grade_workers=0, credentials_auto_seconds=0)


def _assert_headers(r: httpx.Response, frame: str = "'none'") -> None:
    csp = r.headers.get("content-security-policy", "")
    assert f"frame-ancestors {frame}" in csp, (r.url, csp)
    assert "object-src" in csp or "default-src 'none'" in csp
    assert r.headers.get("x-content-type-options") == "nosniff", r.url
    assert r.headers.get("x-frame-options") in ("DENY", "SAMEORIGIN"), r.url
    assert r.headers.get("referrer-policy") == "same-origin", r.url


def test_every_response_carries_the_security_headers(world) -> None:
    c, h = world.client, world.headers("learner_a")
    responses = [
        c.get(f"{PAGES}/verify"),
        c.post(f"{PAGES}/verify", data={"document": "{ not json"}),
        c.get(f"{PAGES}/health"),
        c.get(f"{BASE}/me"),  # 401
        c.get(f"{BASE}/me", headers=h),
        c.get(f"{BASE}/no-such-endpoint", headers=h),  # 404
        c.get(f"{PAGES}/me/", headers=h),
        c.get(f"{BASE}/assignments/{world.ids['assignment_a']}/release/sha.ipynb", headers=h),
        c.get(f"{PAGES}/openapi.json"),
    ]
    for r in responses:
        _assert_headers(r)
    docs = c.get(f"{PAGES}/docs")
    _assert_headers(docs)
    # the verify page's one inline script is allowed by its hash, nothing else inline
    page = c.get(f"{PAGES}/verify")
    scripts = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    csp = page.headers["content-security-policy"]
    assert f"'sha256-{digest}'" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]


def test_graded_feedback_is_sandboxed_and_framed_only_by_academy() -> None:
    """Feedback is HTML built from a learner's submission: no script runs in it, and only
    academy's own page (the iframe on the submission page) may frame it."""
    from academy.security_headers import headers_for

    base = PAGES
    feedback = headers_for(f"{BASE}/submissions/12/feedback", base)
    csp = feedback["Content-Security-Policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert "frame-ancestors 'self'" in csp and feedback["X-Frame-Options"] == "SAMEORIGIN"
    other = headers_for(f"{BASE}/submissions/12/notebook", base)
    assert "frame-ancestors 'none'" in other["Content-Security-Policy"]


def test_cookies_are_secure_under_https(world_on: WorldOn) -> None:
    """The login's state cookie (academy's real HubOAuth, the hub need not answer for the
    redirect): Secure when the request came over https, not over plain http on a loopback
    development setup. The session cookie is set by the same helper."""
    from labs.minichain.ports import free_port

    dead_hub = f"http://127.0.0.1:{free_port()}/hub/api"
    world = world_on(
        "sqlite", grade_workers=0, hub_api_token="service-secret", hub_api_url=dead_hub
    )
    https = TestClient(world.client.app, base_url="https://academy.example")
    r = https.get(f"{PAGES}/login", follow_redirects=False)
    assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["location"]
    cookie = r.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    r = world.client.get(f"{PAGES}/login", follow_redirects=False)
    assert r.status_code == 302 and "secure" not in r.headers["set-cookie"].lower()


def test_the_dashboard_never_shows_text_from_the_url(world) -> None:
    path = f"{PAGES}/dashboard/{world.ids['cohort_a']}"
    h = world.headers("instructor_a")
    injected = "Your-session-expired-call-555-0100"
    r = world.client.get(path, params={"error": injected, "done": injected}, headers=h)
    assert r.status_code == 200 and injected not in r.text
    assert "That was not done." in r.text
    r = world.client.get(path, params={"error": "bad_date"}, headers=h)
    assert "not a date and time" in r.text
    r = world.client.get(path, params={"error": "bad_date"}, headers={**h, **ZH})
    assert "日期选择器" in r.text
    # a failing form comes back with a key, not the message
    aid = world.ids["assignment_a"]
    r = world.client.post(
        f"{path}/assignments/{aid}/deadline", data={"due_at": "soon"}, headers=h,
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].endswith("?error=bad_date")


def test_learners_get_nothing_of_an_assignment_before_it_opens(world) -> None:
    r = world.client.post(
        f"{BASE}/cohorts/{world.ids['cohort_a']}/assignments",
        headers=world.headers("instructor_a"),
        json={"lab": "second", "opens_at": "2099-01-01T00:00:00Z"},
    )
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    learner, staff = world.headers("learner_a"), world.headers("instructor_a")
    paths = [f"{BASE}/assignments/{aid}/release", f"{BASE}/assignments/{aid}/release/second.ipynb"]
    for path in paths:
        r = world.client.get(path, headers=learner)
        assert r.status_code == 403 and "opens at 2099" in r.json()["detail"], r.text
    assert world.client.get(paths[0], headers=staff).status_code == 200
    r = world.client.post(f"{BASE}/me/labs/demo-hashing/second/env", headers=learner)
    assert r.status_code == 403 and "opens at 2099" in r.json()["detail"], r.text
    assert (
        world.client.get(f"{BASE}/me/labs/demo-hashing/second/env", headers=learner).status_code
        == 403
    )
    assert (
        world.client.post(f"{BASE}/me/labs/demo-hashing/second/env", headers=staff).status_code
        == 200
    )
    # the assignment itself is listed (learners see what is coming), its files are not
    assert world.client.get(f"{BASE}/assignments/{aid}", headers=learner).status_code == 200


def test_certificate_subject_ids_are_random(world) -> None:
    doc = json.loads(world.issue_credential("cohort_a", "learner-a", LAB, 3.0).document)
    with session_scope(world.engine) as s:
        cohort = referenced(s, Cohort, world.ids["cohort_a"])
        issuer = svc.issuer_of(s, cohort.institution_id)
        assert issuer is not None
        guessable = uuid.uuid5(uuid.NAMESPACE_URL, issuer.issuer_url + "/learner-a")
    subject = doc["credentialSubject"]["id"]
    assert subject != f"urn:uuid:{guessable}"
    assert uuid.UUID(subject.removeprefix("urn:uuid:")).version == 4
