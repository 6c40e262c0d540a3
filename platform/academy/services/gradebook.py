"""The gradebook of a cohort: latest grade of each learner's latest accepted submission."""

from __future__ import annotations

import csv
import io
import json

from sqlmodel import Session, col, select

from grader.results import NBGRADER_EXPORT_COLUMNS

from ..models import Assignment, Cohort, Grade, Submission, id_of
from .enrollment import learners as enrolled

COLUMNS = [*NBGRADER_EXPORT_COLUMNS, "submissions"]


def rows(session: Session, cohort: Cohort) -> list[dict]:
    """One row per (assignment, enrolled learner), like ``nbgrader export``; empty when none."""
    assignments = session.exec(
        select(Assignment).where(Assignment.cohort_id == cohort.id).order_by(col(Assignment.id))
    ).all()
    learners = enrolled(session, cohort)
    out: list[dict] = []
    for a in assignments:
        subs = session.exec(
            select(Submission)
            .where(Submission.assignment_id == a.id, col(Submission.accepted).is_(True))
            .order_by(col(Submission.id))
        ).all()
        latest: dict[int, Submission] = {}
        counts: dict[int, int] = {}
        for s in subs:
            latest[s.user_id] = s
            counts[s.user_id] = counts.get(s.user_id, 0) + 1
        for user in learners:
            sub = latest.get(id_of(user))
            grade = (
                session.exec(
                    select(Grade)
                    .where(Grade.submission_id == sub.id)
                    .order_by(col(Grade.id).desc())
                ).first()
                if sub
                else None
            )
            out.append(
                {
                    "assignment": a.lab,
                    "timestamp": sub.submitted_at.isoformat() if sub else "",
                    "student_id": user.username,
                    "raw_score": grade.raw_score if grade else 0.0,
                    "late_submission_penalty": grade.late_penalty if grade else 0.0,
                    "score": grade.score if grade else 0.0,
                    "max_score": a.max_score,
                    "submissions": counts.get(id_of(user), 0),
                    "cells": cell_scores(grade.cells) if grade else {},
                }
            )
    return out


def cell_scores(cells_json: str) -> dict[str, tuple[float, float]]:
    """A grade's per-cell results as grade id -> (points, max points)."""
    out: dict[str, tuple[float, float]] = {}
    for grade_id, cell in (json.loads(cells_json or "{}") or {}).items():
        if isinstance(cell, dict):
            out[grade_id] = (float(cell.get("points") or 0.0), float(cell.get("max_points") or 0.0))
    return out


def to_csv(data: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(data)
    return buf.getvalue()
