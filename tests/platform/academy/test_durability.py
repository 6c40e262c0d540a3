"""The grade queue is durable: kill -9 academy mid-grading, start it again, and every submission
is still there and every job ends graded exactly once.  The claim protocol itself is checked on
both databases with many workers racing, and a worker whose lease ran out cannot write a grade."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from academy.db import make_engine, referenced, session_scope, upgrade
from academy.models import Grade, GradeJob, JobStatus, Submission, id_of, utcnow
from academy.services import grading
from academy.services.submissions import blob_path, store_stream
from academy.settings import Settings
from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from labs.minichain.waiting import wait_until

from .builders import answer
from .conftest import Server, SettingsFor, build_world, start_server


def slow_answer(released: dict, seconds: float) -> bytes:
    """A correct answer with an extra learner cell that keeps the grader busy for a while."""
    nb = json.loads(answer(released))
    nb["cells"].append(
        {
            "cell_type": "code",
            "metadata": {},
            "source": f"import time\ntime.sleep({seconds})",
            "outputs": [],
            "execution_count": None,
        }
    )
    return json.dumps(nb).encode()


@pytest.mark.slow
def test_kill_9_mid_grading_then_restart_grades_each_job_exactly_once(
    settings_for: SettingsFor, servers: list[Server], tmp_path: Path
) -> None:
    settings = settings_for(
        "postgresql", grade_workers=2, grade_lease_seconds=3.0, grade_poll_seconds=0.2
    )
    upgrade(settings)
    engine = make_engine(settings)
    world = build_world(settings, None, engine)
    server = start_server(settings, tmp_path / "academy.log")
    servers.append(server)
    aid = world.ids["assignment_a"]
    clients = {
        who: httpx.Client(
            base_url=server.url + "/api",
            timeout=60,
            headers={"Authorization": f"Bearer {world.tokens[who]}"},
        )
        for who in ("learner_a", "learner_a2")
    }
    released = json.loads(clients["learner_a"].get(f"/assignments/{aid}/release/sha.ipynb").content)
    uploads: dict[int, bytes] = {}
    for i in range(4):
        who = ("learner_a", "learner_a2")[i % 2]
        data = slow_answer(released, 1.0 + i / 10)
        r = clients[who].post(
            f"/assignments/{aid}/submissions",
            files={"notebook": (f"sha{i}.ipynb", data, "application/json")},
        )
        assert r.status_code == 202, r.text
        uploads[r.json()["id"]] = data

    def jobs() -> list[GradeJob]:
        with Session(engine) as s:
            return list(s.exec(select(GradeJob).order_by(col(GradeJob.id))))

    wait_until(
        lambda: any(j.status == JobStatus.running for j in jobs()),
        120,
        interval=0.05,
        message="no job started grading",
    )
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    at_kill = jobs()
    interrupted = [j.id for j in at_kill if j.status == JobStatus.running]
    assert interrupted, "the kill should land while a job is running"

    with Session(engine) as s:  # every upload is still there, byte for byte
        subs = s.exec(select(Submission)).all()
    assert {sub.id for sub in subs} == set(uploads)
    for sub in subs:
        assert blob_path(settings, sub.sha256).read_bytes() == uploads[sub.id]
        assert hashlib.sha256(uploads[sub.id]).hexdigest() == sub.sha256

    servers.append(start_server(settings, tmp_path / "academy.log"))
    wait_until(
        lambda: all(j.status == JobStatus.done for j in jobs()),
        180,
        interval=0.2,
        message=lambda: f"jobs not finished: {[(j.id, j.status, j.last_error) for j in jobs()]}",
    )
    final = jobs()
    assert len(final) == len(uploads), "a restart must not create or lose jobs"
    with Session(engine) as s:
        per_job = dict(s.exec(select(Grade.job_id, func.count()).group_by(Grade.job_id)).all())
        scores = s.exec(select(Grade.score)).all()
    assert per_job == {j.id: 1 for j in final}, "every job has exactly one grade"
    assert scores == [3.0] * len(uploads)
    for j in final:
        if j.id in interrupted:
            assert j.attempts == 2, "an interrupted job is taken over once"


def _fresh_jobs(settings: Settings, engine: Engine, n: int) -> int:
    world = build_world(settings, None, engine)
    blob = store_stream(settings, [b'{"cells": []}'])
    with session_scope(engine) as s:
        sub = Submission(
            assignment_id=world.ids["assignment_a"],
            user_id=1,
            sha256=blob.sha256,
            size=blob.size,
            filename="x.ipynb",
        )
        s.add(sub)
        s.flush()
        for _ in range(n):
            s.add(GradeJob(submission_id=id_of(sub)))
        return id_of(sub)


RESULT = {
    "raw_score": 1.0,
    "late_penalty": 0.0,
    "score": 1.0,
    "max_score": 1.0,
    "cells": "{}",
    "feedback_html": "",
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_racing_workers_claim_each_job_once(settings_for: SettingsFor, backend: str) -> None:
    settings = settings_for(backend, grade_workers=0)
    upgrade(settings)
    engine = make_engine(settings)
    _fresh_jobs(settings, engine, 40)
    claimed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while (c := grading.claim(engine, settings)) is not None:
            assert grading.complete(engine, c, RESULT)
            with lock:
                claimed.append(c.job_id)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == list(range(1, 41)), "each job claimed exactly once"
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Grade)).one() == 40
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_worker_whose_lease_ran_out_cannot_write_its_grade(
    settings_for: SettingsFor, backend: str
) -> None:
    settings = settings_for(backend, grade_workers=0, grade_max_attempts=3)
    upgrade(settings)
    engine = make_engine(settings)
    _fresh_jobs(settings, engine, 1)
    slow = grading.claim(engine, settings)
    assert slow is not None and grading.claim(engine, settings) is None, (
        "a leased job is not claimable"
    )
    with Session(engine) as s:  # the slow worker stopped heartbeating: its lease runs out
        s.exec(update(GradeJob).values(lease_until=utcnow() - timedelta(seconds=1)))
        s.commit()
    fast = grading.claim(engine, settings)
    assert fast is not None and fast.job_id == slow.job_id and fast.attempts == 2
    assert not grading.renew(engine, settings, slow)
    assert not grading.complete(engine, slow, RESULT)
    assert grading.complete(engine, fast, RESULT)
    assert not grading.complete(engine, fast, RESULT), "a finished job takes no second grade"
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Grade)).one() == 1
        assert referenced(s, GradeJob, fast.job_id).status == JobStatus.done
    engine.dispose()
