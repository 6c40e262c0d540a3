"""Submissions: stream an upload to disk under a size cap, keep it content-addressed, queue it.

Bytes are written once to STATE_DIR/submissions/<sha[:2]>/<sha> (write to a temporary file,
fsync, rename; an existing blob with the same hash is left untouched), so nothing a learner
uploaded is ever overwritten or lost, whatever happens to the request afterwards.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from ..models import (
    Assignment,
    Extension,
    Grade,
    GradeJob,
    JobStatus,
    LatePolicy,
    Submission,
    User,
    id_of,
    utcnow,
)
from ..settings import Settings
from .errors import Forbidden, Invalid

CHUNK = 1024 * 1024


@dataclass
class StoredBlob:
    sha256: str
    size: int
    path: Path


def blob_path(settings: Settings, sha256: str) -> Path:
    return settings.state_dir / "submissions" / sha256[:2] / sha256


def store_stream(settings: Settings, chunks: Iterable[bytes]) -> StoredBlob:
    """Write an iterable of byte chunks content-addressed; returns its hash, size and path."""
    tmp_dir = settings.state_dir / "submissions" / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        sha = digest.hexdigest()
        final = blob_path(settings, sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            os.unlink(tmp_name)
        else:
            os.replace(tmp_name, final)
        return StoredBlob(sha, size, final)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def check_notebook(data: bytes, filename: str) -> None:
    """One clear line when the upload is not a notebook the grader can read."""
    from grader.assignment import AssignmentError, reads_node

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(
            f"{filename}: not a notebook (not UTF-8 text); upload the .ipynb file"
        ) from None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Invalid(
            f"{filename}: invalid notebook JSON at line {exc.lineno}: {exc.msg}; "
            "save the notebook in JupyterLab and upload it again"
        ) from None
    if not isinstance(parsed, dict) or "cells" not in parsed or "nbformat" not in parsed:
        raise Invalid(
            f"{filename}: not a notebook (JSON without cells/nbformat); upload the .ipynb file"
        )
    try:
        reads_node(text, filename)
    except AssignmentError as exc:
        raise Invalid(f"{exc}; save the notebook in JupyterLab and upload it again") from None


def effective_due(session: Session, assignment: Assignment, user_id: int) -> datetime | None:
    ext = session.exec(
        select(Extension).where(
            Extension.assignment_id == assignment.id, Extension.user_id == user_id
        )
    ).first()
    if ext is not None and (assignment.due_at is None or ext.due_at > assignment.due_at):
        return ext.due_at
    return assignment.due_at


def create_submission(
    session: Session,
    assignment: Assignment,
    user: User,
    blob: StoredBlob,
    filename: str,
) -> tuple[Submission, GradeJob | None]:
    """Record an upload; queue a grade job unless it is late under a reject policy."""
    now = utcnow()
    if now < assignment.opens_at:
        raise Forbidden(f"assignment {assignment.id} opens at {assignment.opens_at.isoformat()}")
    due = effective_due(session, assignment, id_of(user))
    late = max(0.0, (now - due).total_seconds()) if due is not None else 0.0
    accepted = not (late > 0 and assignment.late_policy == LatePolicy.reject)
    sub = Submission(
        assignment_id=id_of(assignment),
        user_id=id_of(user),
        sha256=blob.sha256,
        size=blob.size,
        filename=filename[:255],
        submitted_at=now,
        late_seconds=late,
        accepted=accepted,
    )
    session.add(sub)
    session.flush()
    job = None
    if accepted:
        job = GradeJob(submission_id=id_of(sub))
        session.add(job)
        session.flush()
    return sub, job


def late_penalty(assignment: Assignment, late_seconds: float, raw: float) -> float:
    if late_seconds <= 0 or assignment.late_policy != LatePolicy.penalty:
        return 0.0
    days = math.ceil(late_seconds / 86400)
    return min(raw, raw * assignment.late_penalty_per_day * days)


def latest_job(session: Session, submission_id: int) -> GradeJob | None:
    return session.exec(
        select(GradeJob)
        .where(GradeJob.submission_id == submission_id)
        .order_by(col(GradeJob.id).desc())
    ).first()


def latest_grade(session: Session, submission_id: int) -> Grade | None:
    return session.exec(
        select(Grade).where(Grade.submission_id == submission_id).order_by(col(Grade.id).desc())
    ).first()


def status_of(sub: Submission, job: GradeJob | None) -> str:
    """queued | running | graded | failed | rejected (late under a reject policy)."""
    if not sub.accepted and job is None:
        return "rejected"
    if job is None:
        return "queued"
    return {
        JobStatus.queued: "queued",
        JobStatus.running: "running",
        JobStatus.done: "graded",
        JobStatus.failed: "failed",
    }[JobStatus(job.status)]


def learner_reason(cell: dict) -> str:
    """What a learner may read about one graded cell (from a Grade's ``cells`` JSON): a hidden
    test's message is reduced so it never shows the test's source or values."""
    from grader.results import learner_reason as reason
    from grader.scoring import CellResult

    return reason(
        CellResult(
            "",
            cell.get("points"),
            cell.get("max_points", 0),
            cell.get("status", ""),
            cell.get("reason", ""),
            bool(cell.get("hidden")),
        )
    )
