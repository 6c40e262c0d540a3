"""A learner fetches, submits and reads feedback; an instructor regrades and exports grades.
Run on SQLite and on a real PostgreSQL, grading through the real grader sandbox."""

from __future__ import annotations

import base64
import csv
import io
import json

import httpx
import pytest

from labs.minichain.waiting import wait_until

from .builders import SECRET, answer
from .conftest import BASE, World


def wait_graded(world: World, who: str, sid: int, timeout: float = 90.0) -> dict:
    last: dict = {}

    def settled() -> dict | None:
        last.update(
            world.client.get(f"{BASE}/submissions/{sid}", headers=world.headers(who)).json()
        )
        return dict(last) if last["status"] in ("graded", "failed") else None

    return wait_until(
        settled, timeout, message=lambda: f"submission {sid} not graded in {timeout}s: {last}"
    )


def fetch_notebook(world: World, who: str, aid: int) -> dict:
    r = world.client.get(f"{BASE}/assignments/{aid}/release", headers=world.headers(who))
    assert r.status_code == 200, r.text
    files = {f["path"]: base64.b64decode(f["content_base64"]) for f in r.json()["files"]}
    assert "sha.ipynb" in files and "README.md" in files
    assert SECRET.encode() not in files["sha.ipynb"], "hidden test leaked into the release"
    return json.loads(files["sha.ipynb"])


def submit(
    world: World, who: str, aid: int, data: bytes, name: str = "sha.ipynb"
) -> httpx.Response:
    return world.client.post(
        f"{BASE}/assignments/{aid}/submissions",
        headers=world.headers(who),
        files={"notebook": (name, data, "application/x-ipynb+json")},
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_release_fetch_submit_graded_feedback_gradebook(world_on, backend: str) -> None:
    world = world_on(backend)
    aid = world.ids["assignment_a"]
    mine = world.client.get(f"{BASE}/assignments", headers=world.headers("learner_a")).json()
    assert [a["id"] for a in mine] == [aid]
    nb = fetch_notebook(world, "learner_a", aid)

    wrong = submit(world, "learner_a", aid, answer(nb, correct=False))
    assert wrong.status_code == 202, wrong.text
    right = submit(world, "learner_a", aid, answer(nb, correct=True))
    assert right.status_code == 202
    first = wait_graded(world, "learner_a", wrong.json()["id"])
    second = wait_graded(world, "learner_a", right.json()["id"])
    assert (first["status"], first["score"], first["max_score"]) == ("graded", 0.0, 3.0)
    assert (second["status"], second["score"]) == ("graded", 3.0)
    assert first["cells"]["visible"]["status"] == "failed"

    html = world.client.get(
        f"{BASE}/submissions/{first['id']}/feedback", headers=world.headers("learner_a")
    )
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assert "0 / 3" in html.text and SECRET not in html.text

    # both uploads are kept, byte for byte
    raw = world.client.get(
        f"{BASE}/submissions/{first['id']}/notebook", headers=world.headers("learner_a")
    )
    assert raw.content == answer(nb, correct=False)

    # the instructor regrades everything: one new grade per submission, the latest counts
    r = world.client.post(
        f"{BASE}/assignments/{aid}/regrade", headers=world.headers("instructor_a")
    )
    assert r.status_code == 202 and r.json() == {"queued": 2}

    def all_graded() -> list | None:
        subs = world.client.get(
            f"{BASE}/assignments/{aid}/submissions", headers=world.headers("instructor_a")
        ).json()
        return subs if all(s["status"] == "graded" for s in subs) else None

    subs = wait_until(all_graded, 90, message="the regrade did not finish")
    assert [s["score"] for s in subs] == [0.0, 3.0]

    gb = world.client.get(
        f"{BASE}/cohorts/{world.ids['cohort_a']}/gradebook.csv",
        headers=world.headers("instructor_a"),
    )
    assert gb.status_code == 200 and gb.headers["content-type"].startswith("text/csv")
    assert gb.text.splitlines()[0] == (  # nbgrader export's columns, as the grader's CSV
        "assignment,timestamp,student_id,raw_score,late_submission_penalty,score,max_score,"
        "submissions"
    )
    rows = {r["student_id"]: r for r in csv.DictReader(io.StringIO(gb.text))}
    assert rows["learner-a"]["score"] == "3.0" and rows["learner-a"]["submissions"] == "2"
    assert rows["learner-a2"]["score"] == "0.0" and rows["learner-a2"]["submissions"] == "0"
    assert "learner-b" not in rows

    audit = world.client.get(
        f"{BASE}/audit?institution=uni-a", headers=world.headers("admin_a")
    ).json()
    actions = [e["action"] for e in audit]
    assert actions.count("grade.regrade") == 2 and "enrollment.create" in actions
