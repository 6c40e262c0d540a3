"""The grade poll is conditional: ``GET /api/submissions/{id}`` carries a strong ETag, and a
poller that sends it back gets a bodiless 304 until the submission changes. Visibility is
checked before the ETag, so another learner's submission stays 404 either way."""

from __future__ import annotations

import httpx
from academy.client import AcademyClient
from fastapi.testclient import TestClient

from .builders import answer
from .conftest import BASE, World
from .test_learner_flow import fetch_notebook, submit, wait_graded


def _submitted(world: World) -> int:
    """A submission of learner_a, left queued (no grade workers)."""
    aid = world.ids["assignment_a"]
    reply = submit(world, "learner_a", aid, answer(fetch_notebook(world, "learner_a", aid)))
    assert reply.status_code == 202, reply.text
    return int(reply.json()["id"])


def _poll(world: World, who: str, sid: int, etag: str | None = None) -> httpx.Response:
    headers = world.headers(who)
    if etag is not None:
        headers["If-None-Match"] = etag
    return world.client.get(f"{BASE}/submissions/{sid}", headers=headers)


def test_unchanged_state_answers_304_without_body(world_on) -> None:
    world = world_on("sqlite", grade_workers=0)
    sid = _submitted(world)
    first = _poll(world, "learner_a", sid)
    assert first.status_code == 200 and first.json()["status"] == "queued"
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert first.headers["cache-control"] == "private, no-cache"

    again = _poll(world, "learner_a", sid, etag)
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == "private, no-cache"
    # one of several tags, or the weak form of it, still matches (weak comparison)
    assert _poll(world, "learner_a", sid, f'"other", W/{etag}').status_code == 304
    assert _poll(world, "learner_a", sid, "*").status_code == 304
    # a stale tag gets the full answer
    stale = _poll(world, "learner_a", sid, '"0123456789abcdef"')
    assert stale.status_code == 200 and stale.json() == first.json()


def test_malformed_if_none_match_is_a_plain_200(world_on) -> None:
    world = world_on("sqlite", grade_workers=0)
    sid = _submitted(world)
    etag = _poll(world, "learner_a", sid).headers["etag"]
    for junk in ("", "   ", "not-a-tag", '"unterminated', ",,,", etag.strip('"')):
        reply = _poll(world, "learner_a", sid, junk)
        assert reply.status_code == 200, junk
        assert reply.json()["id"] == sid and reply.headers["etag"] == etag


def test_another_learner_gets_404_with_or_without_etag(world_on) -> None:
    world = world_on("sqlite", grade_workers=0)
    sid = _submitted(world)
    etag = _poll(world, "learner_a", sid).headers["etag"]
    for who in ("learner_a2", "learner_b"):
        for tag in (None, etag, "*"):
            reply = _poll(world, who, sid, tag)
            assert reply.status_code == 404, (who, tag, reply.status_code)
            assert "etag" not in reply.headers
    assert _poll(world, "anonymous", sid, etag).status_code == 401


def test_grading_changes_the_etag_and_the_body_comes_again(world_on) -> None:
    world = world_on("sqlite")
    sid = _submitted(world)
    before = _poll(world, "learner_a", sid)
    assert before.status_code == 200
    graded = wait_graded(world, "learner_a", sid)
    assert graded["status"] == "graded"
    after = _poll(world, "learner_a", sid, before.headers["etag"])
    assert after.status_code == 200 and after.json() == graded
    assert after.headers["etag"] != before.headers["etag"]
    assert _poll(world, "learner_a", sid, after.headers["etag"]).status_code == 304


def test_client_polls_conditionally_and_reuses_the_body(world_on) -> None:
    world = world_on("sqlite", grade_workers=0)
    sid = _submitted(world)
    client = AcademyClient(url="http://testserver/services/academy", token="unused")
    http = TestClient(
        world.client.app,
        base_url="http://testserver/services/academy",
        headers=world.headers("learner_a"),
    )
    seen: list[tuple[str | None, int]] = []
    http.event_hooks = {
        "response": [lambda r: seen.append((r.request.headers.get("if-none-match"), r.status_code))]
    }
    client._http = http
    first = client.submission(sid)
    second = client.submission(sid)
    assert first == second and first["status"] == "queued"
    assert seen[0] == (None, 200)
    assert seen[1][0] is not None and seen[1][1] == 304
    # wait (timed out, still queued) keeps answering from the cached body
    assert client.wait(sid, timeout=0.2, poll=0.05)["status"] == "queued"
    assert all(code == 304 for _tag, code in seen[2:]) and len(seen) > 2
