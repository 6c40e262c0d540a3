"""The durable grade-job queue and the workers that drain it.

A job moves queued -> running -> done | failed.  A worker claims a job by compare-and-set on its
row (on PostgreSQL the candidate is picked with ``SELECT ... FOR UPDATE SKIP LOCKED`` so workers
never wait on each other), holds a lease it renews while grading, and finishes it with another
compare-and-set on its claim token in the same transaction that inserts the grade.  So:

- a worker killed mid-grading leaves a ``running`` job whose lease runs out; any worker then
  takes it over (the attempt counts);
- a worker that lost its claim cannot write a grade: each job ends with exactly one grade
  (``grade.job_id`` is unique as a last line of defence);
- a grader crash (sandbox trouble) is retried with doubling backoff up to ``grade_max_attempts``;
  a submission the grader refuses outright fails at once with the grader's one-line reason.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ..models import Assignment, Grade, GradeJob, JobStatus, Submission, User, id_of, utcnow
from ..settings import Settings
from . import audit
from .access import Principal
from .courses import assignment_dir, source_notebook_path
from .submissions import blob_path, late_penalty

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger("academy.grading")


class PermanentGradeError(Exception):
    """The grader refuses this submission; retrying cannot help."""


@dataclass
class Claim:
    job_id: int
    token: str
    submission_id: int
    attempts: int


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(col(GradeJob.status) == JobStatus.queued, col(GradeJob.run_after) <= now),
        and_(col(GradeJob.status) == JobStatus.running, col(GradeJob.lease_until) < now),
    )


def claim(engine: Engine, settings: Settings) -> Claim | None:
    """Take the oldest claimable job, or None.  Safe with any number of workers and processes."""
    with Session(engine) as session:
        now = utcnow()
        pick = select(GradeJob.id).where(_claimable(now)).order_by(col(GradeJob.id)).limit(1)
        if engine.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        job_id = session.exec(pick).first()
        if job_id is None:
            return None
        token = uuid.uuid4().hex
        result = session.exec(
            update(GradeJob)
            .where(col(GradeJob.id) == job_id, _claimable(now))
            .values(
                status=JobStatus.running,
                claim_token=token,
                lease_until=now + timedelta(seconds=settings.grade_lease_seconds),
                attempts=GradeJob.attempts + 1,
            )
        )
        if result.rowcount != 1:
            session.rollback()
            return None
        job = session.get(GradeJob, job_id)
        session.commit()
        assert job is not None
        if job.attempts > settings.grade_max_attempts:
            _finish_failed(
                engine,
                id_of(job),
                token,
                "gave up: the grader stopped in the middle "
                f"{job.attempts - 1} times on this submission",
            )
            return None
        return Claim(id_of(job), token, job.submission_id, job.attempts)


def renew(engine: Engine, settings: Settings, claim_: Claim) -> bool:
    """Extend the lease; False when the claim was lost."""
    with Session(engine) as session:
        result = session.exec(
            update(GradeJob)
            .where(col(GradeJob.id) == claim_.job_id, col(GradeJob.claim_token) == claim_.token)
            .values(lease_until=utcnow() + timedelta(seconds=settings.grade_lease_seconds))
        )
        session.commit()
        return result.rowcount == 1


def _finish_failed(engine: Engine, job_id: int, token: str, error: str) -> None:
    with Session(engine) as session:
        session.exec(
            update(GradeJob)
            .where(col(GradeJob.id) == job_id, col(GradeJob.claim_token) == token)
            .values(
                status=JobStatus.failed,
                claim_token=None,
                lease_until=None,
                finished_at=utcnow(),
                last_error=error[:2000],
            )
        )
        session.commit()


def _retry_later(engine: Engine, settings: Settings, claim_: Claim, error: str) -> None:
    if claim_.attempts >= settings.grade_max_attempts:
        _finish_failed(engine, claim_.job_id, claim_.token, error)
        return
    delay = settings.grade_backoff_seconds * (2 ** (claim_.attempts - 1))
    with Session(engine) as session:
        session.exec(
            update(GradeJob)
            .where(col(GradeJob.id) == claim_.job_id, col(GradeJob.claim_token) == claim_.token)
            .values(
                status=JobStatus.queued,
                claim_token=None,
                lease_until=None,
                run_after=utcnow() + timedelta(seconds=delay),
                last_error=error[:2000],
            )
        )
        session.commit()


def grade_once(
    settings: Settings, sub: Submission, assignment: Assignment, user: User, key: str = ""
) -> dict:
    """Run the grader on one stored submission: scores, per-cell results and feedback HTML.

    The submission travels as a :class:`grader.jobs.Job` (data only) to
    :func:`grader.jobs.run_job`, here or on a Dask worker: the same code grades both ways.
    """
    from grader.assignment import AssignmentError, read_node, reads_node
    from grader.jobs import Job, run_job, side_files
    from grader.language import notebook_language
    from grader.limits import Limits
    from grader.results import feedback_html, totals

    try:
        submitted = reads_node(
            blob_path(settings, sub.sha256).read_text(encoding="utf-8"), sub.filename
        )
        # graded against the source in the language the notebook was released in: the same
        # grade ids and points (release refuses a translation out of step), its own messages
        language = notebook_language(submitted)
        source = read_node(source_notebook_path(settings, assignment, language))
    except AssignmentError as exc:
        raise PermanentGradeError(str(exc)) from None
    name = Path(assignment.notebook).stem
    job = Job(
        student=user.username,
        assignment=assignment.lab,
        notebooks=[(name, source, submitted, "")],
        files=side_files(assignment_dir(settings, id_of(assignment)) / "source"),
        limits=Limits(cell_timeout=settings.cell_timeout),
    )
    try:
        if settings.grader_backend == "dask":
            result = (
                _dask_client(settings.dask_scheduler)
                .submit(run_job, job, key=key or None, pure=False)
                .result()
            )
        else:
            result = run_job(job)
    except (AssignmentError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PermanentGradeError(first) from None
    cells = result.notebooks[name]
    raw, max_score, _manual = totals({name: cells})
    penalty = late_penalty(assignment, sub.late_seconds, raw)
    return {
        "raw_score": raw,
        "late_penalty": penalty,
        "score": raw - penalty,
        "max_score": max_score,
        "cells": json.dumps(
            {gid: {**r.as_json(), "hidden": r.hidden} for gid, r in cells.items()}, sort_keys=True
        ),
        "feedback_html": feedback_html(
            user.username, assignment.title or assignment.lab, {name: cells}, language=language
        ),
    }


_DASK: dict[str, Client] = {}
_DASK_LOCK = threading.Lock()


def _dask_client(address: str) -> Client:
    """One Dask client per scheduler for the whole process (made on first use)."""
    with _DASK_LOCK:
        client = _DASK.get(address)
        if client is None or getattr(client, "status", "") in ("closed", "closing"):
            from distributed import Client

            from grader.cluster import check_scheduler

            check_scheduler(address)
            client = Client(address, timeout="10s", set_as_default=False)
            _DASK[address] = client
        return client


def complete(engine: Engine, claim_: Claim, result: dict) -> bool:
    """Store the grade and mark the job done, atomically, only if the claim still holds."""
    with Session(engine) as session:
        done = session.exec(
            update(GradeJob)
            .where(
                col(GradeJob.id) == claim_.job_id,
                col(GradeJob.claim_token) == claim_.token,
                col(GradeJob.status) == JobStatus.running,
            )
            .values(status=JobStatus.done, claim_token=None, lease_until=None, finished_at=utcnow())
        )
        if done.rowcount != 1:
            session.rollback()
            return False
        grade = Grade(job_id=claim_.job_id, submission_id=claim_.submission_id, **result)
        session.add(grade)
        session.flush()
        sub = session.get(Submission, claim_.submission_id)
        audit.record(
            session,
            None,
            "grade.create",
            "grade",
            grade.id,
            institution_of(session, sub.assignment_id) if sub else None,
            submission=claim_.submission_id,
            job=claim_.job_id,
            assignment=sub.assignment_id if sub else None,
            score=result["score"],
            max_score=result["max_score"],
        )
        session.commit()
        return True


def run_one(engine: Engine, settings: Settings) -> bool:
    """Claim and grade one job; False when there was nothing to do."""
    claim_ = claim(engine, settings)
    if claim_ is None:
        return False
    stop_beat = threading.Event()

    def beat() -> None:
        while not stop_beat.wait(settings.grade_lease_seconds / 3):
            if not renew(engine, settings, claim_):
                return

    beater = threading.Thread(target=beat, name=f"lease-{claim_.job_id}", daemon=True)
    beater.start()
    try:
        with Session(engine) as session:
            sub = session.get(Submission, claim_.submission_id)
            assignment = session.get(Assignment, sub.assignment_id) if sub else None
            user = session.get(User, sub.user_id) if sub else None
        if sub is None or assignment is None or user is None:
            _finish_failed(engine, claim_.job_id, claim_.token, "submission disappeared")
            return True
        try:
            key = f"academy-job-{claim_.job_id}-{claim_.attempts}-{claim_.token[:8]}"
            result = grade_once(settings, sub, assignment, user, key)
        except PermanentGradeError as exc:
            _finish_failed(engine, claim_.job_id, claim_.token, str(exc))
            return True
        except Exception as exc:  # sandbox or machine trouble: try again later
            log.warning(
                "grading job %s failed (attempt %s): %s", claim_.job_id, claim_.attempts, exc
            )
            _retry_later(engine, settings, claim_, f"{type(exc).__name__}: {exc}")
            return True
        if not complete(engine, claim_, result):
            log.warning("job %s was taken over by another worker; result dropped", claim_.job_id)
        return True
    finally:
        stop_beat.set()


def _warm_sandbox() -> None:
    from grader.executor import SandboxError, warm

    try:
        warm()
    except (SandboxError, OSError) as exc:  # not root, say: the first job reports it properly
        log.warning("grading sandbox not warmed: %s", exc)


class WorkerPool:
    """Grading threads inside one process; ``wake()`` makes an idle worker look at once."""

    def __init__(self, engine: Engine, settings: Settings, threads: int | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.count = settings.grade_workers if threads is None else threads
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self.on_idle: Callable[[], None] | None = None

    def start(self) -> None:
        if self.count > 0 and self.settings.grader_backend == "local":
            # lab notebooks import web3 and labs.client: the warm zygote imports them once, now,
            # so a learner's first submission is graded in seconds, not after those imports
            from grader.executor import use_lab_preload

            use_lab_preload()
            threading.Thread(target=_warm_sandbox, name="grade-warm", daemon=True).start()
        for i in range(self.count):
            t = threading.Thread(target=self._loop, name=f"grade-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = run_one(self.engine, self.settings)
            except Exception:  # database unreachable for a moment: wait and go on
                log.exception("grading worker error")
                worked = False
            if not worked:
                self._wake.wait(self.settings.grade_poll_seconds)
                self._wake.clear()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()


def institution_of(session: Session, assignment_id: int) -> int | None:
    from ..models import Cohort

    assignment = session.get(Assignment, assignment_id)
    cohort = session.get(Cohort, assignment.cohort_id) if assignment else None
    return cohort.institution_id if cohort else None


def enqueue_regrade(session: Session, actor: Principal, submission: Submission) -> GradeJob:
    job = GradeJob(submission_id=id_of(submission), reason="regrade")
    session.add(job)
    session.flush()
    audit.record(
        session,
        actor,
        "grade.regrade",
        "submission",
        submission.id,
        institution_of(session, submission.assignment_id),
        job=job.id,
    )
    return job


def pending_jobs(session: Session) -> int:
    return len(
        session.exec(
            select(GradeJob.id).where(
                col(GradeJob.status).in_([JobStatus.queued, JobStatus.running])
            )
        ).all()
    )
