"""Bad input gets one clear 4xx line and nothing already stored is lost: not a notebook, invalid
notebook JSON, a 200 MB upload (streamed to a real server, never held in memory), a duplicate
enrollment, late submissions under each policy, a CSV with broken rows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from .builders import answer
from .conftest import BASE, World, WorldOn, build_world, start_server
from .test_learner_flow import submit, wait_graded


def one_line(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail and "Traceback" not in detail
    return detail


def released(world: World, aid: int) -> dict:
    r = world.client.get(
        f"{BASE}/assignments/{aid}/release/sha.ipynb", headers=world.headers("learner_a")
    )
    return json.loads(r.content)


def test_uploads_that_are_not_notebooks(world_on: WorldOn) -> None:
    world = world_on("sqlite", grade_workers=0)
    aid = world.ids["assignment_a"]
    good = answer(released(world, aid))
    kept = submit(world, "learner_a", aid, good).json()

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    assert "not a notebook" in one_line(submit(world, "learner_a", aid, png, "cat.png"), 422)
    msg = one_line(submit(world, "learner_a", aid, b'{"cells": [', "broken.ipynb"), 422)
    assert "invalid notebook JSON" in msg and "line 1" in msg
    assert "not a notebook" in one_line(submit(world, "learner_a", aid, b'{"a": 1}'), 422)
    assert "not a valid notebook" in one_line(
        submit(
            world,
            "learner_a",
            aid,
            b'{"cells": 3, "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
        ),
        422,
    )
    r = world.client.post(
        f"{BASE}/assignments/{aid}/submissions", headers=world.headers("learner_a"), data={"x": "1"}
    )
    assert "field 'notebook'" in one_line(r, 422)
    r = world.client.post(
        f"{BASE}/assignments/{aid}/submissions",
        headers={**world.headers("learner_a"), "Content-Type": "application/json"},
        content=good,
    )
    assert "multipart/form-data" in one_line(r, 422)

    subs = world.client.get(
        f"{BASE}/assignments/{aid}/submissions", headers=world.headers("learner_a")
    ).json()
    assert [s["id"] for s in subs] == [kept["id"]], "a refused upload must not become a submission"
    raw = world.client.get(
        f"{BASE}/submissions/{kept['id']}/notebook", headers=world.headers("learner_a")
    )
    assert raw.content == good
    tmp = world.settings.state_dir / "submissions" / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir())


def test_duplicate_enrollment_and_broken_csv_rows(world_on: WorldOn) -> None:
    world = world_on("sqlite", grade_workers=0)
    cid = world.ids["cohort_a"]
    h = world.headers("admin_a")
    r = world.client.post(
        f"{BASE}/cohorts/{cid}/enrollments", headers=h, json={"username": "learner-a"}
    )
    assert "already enrolled" in one_line(r, 409)
    r = world.client.post(
        f"{BASE}/cohorts/{cid}/enrollments", headers=h, json={"username": "Bad Name!"}
    )
    assert "username" in one_line(r, 422)

    def csv_post(text: str) -> httpx.Response:
        return world.client.post(
            f"{BASE}/cohorts/{cid}/enrollments/csv",
            headers={**h, "Content-Type": "text/csv"},
            content=text.encode(),
        )

    def enrolled() -> list[str]:
        return [
            e["username"]
            for e in world.client.get(f"{BASE}/cohorts/{cid}/enrollments", headers=h).json()
        ]

    before = enrolled()
    broken = "username,display_name,email\nnew-1,New One,n1@example.org\nNOT OK,x,\nnew-2,,\nnew-1,dup,\n,,\nnew-3,a,b,c\n"
    r = csv_post(broken)
    detail = one_line(r, 422)
    assert "nothing was applied" in detail
    rows = {row["row"]: row for row in r.json()["rows"]}
    assert rows[2]["status"] == "ok" and rows[4]["status"] == "ok"
    assert rows[3]["status"] == "error" and "username" in rows[3]["message"]
    assert rows[5]["status"] == "error" and "duplicate of row 2" in rows[5]["message"]
    assert rows[7]["status"] == "error" and "more fields" in rows[7]["message"]
    assert enrolled() == before, "a CSV with broken rows must change nothing"
    assert "'username' column" in one_line(csv_post("name,email\nx,y\n"), 422)
    assert "not UTF-8" in one_line(
        world.client.post(
            f"{BASE}/cohorts/{cid}/enrollments/csv",
            headers={**h, "Content-Type": "text/csv"},
            content=b"username\n\xff\xfe\n",
        ),
        422,
    )

    good = "username,display_name\nnew-1,New One\nnew-2,\nlearner-a,\n"
    first = csv_post(good)
    assert first.status_code == 200, first.text
    assert (first.json()["enrolled"], first.json()["already_enrolled"]) == (2, 1)
    again = csv_post(good)
    assert (again.json()["enrolled"], again.json()["already_enrolled"]) == (0, 3)
    assert sorted(enrolled()) == sorted({*before, "new-1", "new-2"})


def test_unknown_names_get_a_404_naming_them(world_on: WorldOn) -> None:
    world = world_on("sqlite", grade_workers=0)
    cid, aid = world.ids["cohort_a"], world.ids["assignment_a"]
    h = world.headers("admin_a")
    r = world.client.get(f"{BASE}/roles?institution=nope", headers=h)
    assert one_line(r, 404) == "no institution 'nope'"
    body = {"institution": "uni-a", "course": "nope", "slug": "c9"}
    r = world.client.post(f"{BASE}/cohorts", headers=h, json=body)
    assert one_line(r, 404) == "no course 'nope'; import it first"
    r = world.client.delete(f"{BASE}/cohorts/{cid}/enrollments/nobody", headers=h)
    assert one_line(r, 404) == "no user 'nobody'"
    # a user who exists but learns elsewhere is not enrolled here, for unenrolling or extending
    r = world.client.delete(f"{BASE}/cohorts/{cid}/enrollments/learner-b", headers=h)
    assert one_line(r, 404) == "learner-b is not enrolled in cohort c1"
    r = world.client.put(
        f"{BASE}/assignments/{aid}/extensions/learner-b",
        headers=world.headers("instructor_a"),
        json={"due_at": "2099-02-01T00:00:00Z"},
    )
    assert one_line(r, 404) == "learner-b is not enrolled in cohort c1"
    r = world.client.get(f"{BASE}/credentials/nope", headers=h)
    assert one_line(r, 404) == "no credential nope"
    # and the cohorts a learner is in come with their institution and course
    me = world.client.get(f"{BASE}/me", headers=world.headers("learner_a")).json()
    assert me["enrollments"] == [
        {"cohort_id": cid, "cohort": "c1", "institution": "uni-a", "course": "demo-hashing"}
    ]


def test_late_submissions_under_each_policy(world_on: WorldOn) -> None:
    world = world_on("sqlite")
    cid = world.ids["cohort_a"]
    r = world.client.post(
        f"{BASE}/cohorts/{cid}/assignments",
        headers=world.headers("instructor_a"),
        json={
            "lab": "second",
            "opens_at": "2020-01-01T00:00:00Z",
            "due_at": "2020-01-02T00:00:00Z",
            "late_policy": "reject",
        },
    )
    assert r.status_code == 201, r.text
    late_id = r.json()["id"]
    nb = json.loads(
        world.client.get(
            f"{BASE}/assignments/{late_id}/release/second.ipynb", headers=world.headers("learner_a")
        ).content
    )
    refused = submit(world, "learner_a", late_id, answer(nb), "second.ipynb")
    assert "deadline has passed" in one_line(refused, 409)
    kept_id = refused.json()["submission_id"]
    kept = world.client.get(
        f"{BASE}/submissions/{kept_id}", headers=world.headers("learner_a")
    ).json()
    assert kept["status"] == "rejected" and kept["late"] is True
    assert world.client.get(
        f"{BASE}/submissions/{kept_id}/notebook", headers=world.headers("learner_a")
    ).content == answer(nb)

    # an extension for this learner makes the next upload count; the other learner is still late
    r = world.client.put(
        f"{BASE}/assignments/{late_id}/extensions/learner-a",
        headers=world.headers("instructor_a"),
        json={"due_at": "2099-01-01T00:00:00Z"},
    )
    assert r.status_code == 200
    ok = submit(world, "learner_a", late_id, answer(nb), "second.ipynb")
    assert ok.status_code == 202 and ok.json()["late"] is False
    assert submit(world, "learner_a2", late_id, answer(nb), "second.ipynb").status_code == 409
    # the instructor may grade the kept late one anyway
    assert (
        world.client.post(
            f"{BASE}/submissions/{kept_id}/regrade", headers=world.headers("instructor_a")
        ).status_code
        == 202
    )
    assert wait_graded(world, "learner_a", kept_id)["score"] == 3.0

    # penalty policy: graded, and the score reduced per started late day
    r = world.client.patch(
        f"{BASE}/assignments/{world.ids['assignment_a']}",
        headers=world.headers("instructor_a"),
        json={"due_at": "2099-01-01T00:00:00Z"},
    )
    assert r.status_code == 200
    from academy.db import referenced, session_scope
    from academy.models import Assignment, LatePolicy, utcnow

    with session_scope(world.engine) as s:
        a = referenced(s, Assignment, world.ids["assignment_a"])
        a.late_policy, a.late_penalty_per_day = LatePolicy.penalty, 0.25
        a.opens_at = utcnow().replace(year=2020)
        a.due_at = utcnow().replace(microsecond=0) - __import__("datetime").timedelta(
            days=1, hours=1
        )
    sub = submit(
        world,
        "learner_a",
        world.ids["assignment_a"],
        answer(released(world, world.ids["assignment_a"])),
    )
    assert sub.status_code == 202 and sub.json()["late"] is True
    graded = wait_graded(world, "learner_a", sub.json()["id"])
    assert (graded["raw_score"], graded["late_penalty"], graded["score"]) == (3.0, 1.5, 1.5)

    # before an assignment opens nobody submits
    r = world.client.post(
        f"{BASE}/cohorts/{cid}/assignments",
        headers=world.headers("admin_a"),
        json={"lab": "second", "opens_at": "2099-01-01T00:00:00Z"},
    )
    assert "already released" in one_line(r, 409)


@pytest.mark.slow
def test_200_mb_upload_is_refused_while_streaming(settings_for, servers, tmp_path: Path) -> None:
    """A real server: the 200 MB body is drained, never buffered; the answer is one 413 line."""
    settings = settings_for("sqlite", grade_workers=0)
    from academy.db import make_engine, upgrade

    upgrade(settings)
    world = build_world(settings, None, make_engine(settings))
    server = start_server(settings, tmp_path / "server.log")
    servers.append(server)
    aid = world.ids["assignment_a"]
    auth = {"Authorization": f"Bearer {world.tokens['learner_a']}"}
    client = httpx.Client(base_url=server.url + "/api", headers=auth, timeout=120)

    def rss_peak_kib() -> int:
        status = Path(f"/proc/{server.proc.pid}/status").read_text()
        return int(
            next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
        )

    before = rss_peak_kib()
    boundary = "academyboundary"
    mib = b"x" * (1024 * 1024)

    def body():  # chunked: no Content-Length, the server must count as it reads
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="notebook"; filename="big.ipynb"\r\n'
            "Content-Type: application/json\r\n\r\n"
        ).encode()
        for _ in range(200):
            yield mib
        yield f"\r\n--{boundary}--\r\n".encode()

    started = time.monotonic()
    r = client.post(
        f"/assignments/{aid}/submissions",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "larger than 20 MiB" in one_line(r, 413)
    # declared up front: refused before reading
    r = client.post(
        f"/assignments/{aid}/submissions",
        content=body(),
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(sum(len(c) for c in body())),
        },
    )
    assert "larger than 20 MiB" in one_line(r, 413)
    elapsed = time.monotonic() - started
    growth_mib = (rss_peak_kib() - before) / 1024
    assert growth_mib < 64, (
        f"the server's peak memory grew by {growth_mib:.0f} MiB for a refused upload"
    )
    listed = client.get(f"/assignments/{aid}/submissions").json()
    assert listed == [], "a refused upload must not become a submission"
    tmp = settings.state_dir / "submissions" / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir()), "no partial upload left behind"
    print(
        f"two 200 MiB uploads refused in {elapsed:.1f} s; server peak RSS grew {growth_mib:.1f} MiB"
    )
