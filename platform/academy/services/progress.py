"""A cohort at a glance, for the instructor dashboard: per assignment who submitted, what it scored,
which hidden tests fail most, who is late and who is missing.

Counts the latest *accepted* submission of each enrolled learner and its latest grade, as the
gradebook does, so the dashboard and the exported CSV never disagree. Rejected (late under a
reject policy) submissions are listed as late so an instructor can accept and regrade them.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlmodel import Session, col, select

from ..models import (
    Assignment,
    Cohort,
    Extension,
    Grade,
    GradeJob,
    Submission,
    User,
    id_of,
    to_utc,
    utcnow,
)
from .enrollment import learners as enrolled
from .submissions import learner_reason, status_of


@dataclass
class HiddenTest:
    assignment: str
    test: str
    graded: int = 0
    failed: int = 0
    reasons: Counter = field(default_factory=Counter)
    passed_by: dict[str, bool] = field(default_factory=dict)  # learner -> passed, when graded

    @property
    def fail_rate(self) -> float:
        return self.failed / self.graded if self.graded else 0.0


@dataclass
class LateRow:
    submission_id: int
    learner: str
    late_seconds: float
    accepted: bool


@dataclass
class AssignmentProgress:
    assignment: Assignment
    due_at: datetime | None
    enrolled: int
    submitted: int = 0
    graded: int = 0
    pending: int = 0
    scores: list[float] = field(default_factory=list)  # fractions 0..1 of graded learners
    late: list[LateRow] = field(default_factory=list)
    missing: list[tuple[str, bool]] = field(default_factory=list)  # (learner, overdue)

    @property
    def mean(self) -> float | None:
        return sum(self.scores) / len(self.scores) if self.scores else None


@dataclass
class CohortProgress:
    cohort: Cohort
    learners: list[User]
    assignments: list[AssignmentProgress]
    hidden: list[HiddenTest]  # most failed first


Latest = TypeVar("Latest", Grade, GradeJob)


def _latest(session: Session, model: type[Latest], ids: list[int]) -> dict[int, Latest]:
    """The newest ``model`` row (Grade or GradeJob) of each submission in ``ids``."""
    latest: dict[int, Latest] = {}
    if ids:
        column = model.submission_id
        for row in session.exec(select(model).where(col(column).in_(ids)).order_by(col(model.id))):
            latest[row.submission_id] = row
    return latest


def cohort_progress(session: Session, cohort: Cohort) -> CohortProgress:
    """Everything the dashboard shows for one cohort, in a handful of queries."""
    learners = enrolled(session, cohort)
    names = {u.id: u.username for u in learners}
    assignments = list(
        session.exec(
            select(Assignment).where(Assignment.cohort_id == cohort.id).order_by(col(Assignment.id))
        )
    )
    a_ids = [a.id for a in assignments]
    subs = (
        list(
            session.exec(
                select(Submission)
                .where(col(Submission.assignment_id).in_(a_ids))
                .order_by(col(Submission.id))
            )
        )
        if a_ids
        else []
    )
    ext = (
        {
            (e.assignment_id, e.user_id): e.due_at
            for e in session.exec(select(Extension).where(col(Extension.assignment_id).in_(a_ids)))
        }
        if a_ids
        else {}
    )
    latest: dict[tuple[int, int], Submission] = {}
    latest_any: dict[tuple[int, int], Submission] = {}
    for s in subs:
        if s.user_id not in names:
            continue
        latest_any[(s.assignment_id, s.user_id)] = s
        if s.accepted:
            latest[(s.assignment_id, s.user_id)] = s
    ids = [id_of(s) for s in latest_any.values()]
    grades, jobs = _latest(session, Grade, ids), _latest(session, GradeJob, ids)
    now = utcnow()
    hidden: dict[tuple[str, str], HiddenTest] = {}
    out = []
    for a in assignments:
        row = AssignmentProgress(a, a.due_at, len(learners))
        for user in learners:
            key = (id_of(a), id_of(user))
            sub = latest_any.get(key)
            if sub is None:
                due = ext.get(key) or a.due_at
                row.missing.append((user.username, due is not None and to_utc(due) < now))
                continue
            if sub.late_seconds > 0:
                row.late.append(LateRow(id_of(sub), user.username, sub.late_seconds, sub.accepted))
            sub = latest.get(key)
            if sub is None:
                continue
            row.submitted += 1
            grade = grades.get(id_of(sub))
            if grade is None:
                if status_of(sub, jobs.get(id_of(sub))) in ("queued", "running"):
                    row.pending += 1
                continue
            row.graded += 1
            row.scores.append(grade.score / grade.max_score if grade.max_score else 0.0)
            _count_hidden(hidden, a.lab, grade, user.username)
        out.append(row)
    ranked = sorted(hidden.values(), key=lambda h: (-h.fail_rate, -h.failed, h.assignment, h.test))
    return CohortProgress(cohort, learners, out, ranked)


def _count_hidden(
    hidden: dict[tuple[str, str], HiddenTest], lab: str, grade: Grade, learner: str
) -> None:
    for test, cell in json.loads(grade.cells).items():
        if not cell.get("hidden"):
            continue
        entry = hidden.setdefault((lab, test), HiddenTest(lab, test))
        entry.graded += 1
        entry.passed_by[learner] = cell.get("status") == "passed"
        if cell.get("status") != "passed":
            entry.failed += 1
            entry.reasons[learner_reason(cell)] += 1


def histogram(fractions: list[float], bins: int = 10) -> list[int]:
    """Counts of scores in ``bins`` equal bands of 0..100 % (a full score goes in the top band)."""
    counts = [0] * bins
    for f in fractions:
        counts[min(int(max(f, 0.0) * bins), bins - 1)] += 1
    return counts
