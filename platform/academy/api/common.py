"""Lookups shared by routers: load a row or answer 404, and turn rows into API bodies."""

from __future__ import annotations

import json
from typing import TypeVar

from sqlmodel import Session, select

from ..models import (
    Assignment,
    Cohort,
    Course,
    Institution,
    Submission,
    User,
    id_of,
    to_utc,
    utcnow,
)
from ..services import submissions as subs
from ..services.access import Principal
from ..services.errors import Forbidden, NotFound, found
from .schemas import AssignmentOut, CohortOut, SubmissionOut

MAX_ID = 2**31 - 1

Row = TypeVar("Row")


def get_row(session: Session, model: type[Row], row_id: int, what: str) -> Row:
    row = session.get(model, row_id) if 0 < row_id <= MAX_ID else None
    if row is None:
        raise NotFound(f"no {what} {row_id}")
    return row


def institution_by_slug(session: Session, slug: str) -> Institution:
    row = session.exec(select(Institution).where(Institution.slug == slug)).first()
    return found(row, f"no institution {slug!r}")


def course_by_slug(session: Session, slug: str) -> Course:
    row = session.exec(select(Course).where(Course.slug == slug)).first()
    return found(row, f"no course {slug!r}; import it first")


def cohort_out(session: Session, cohort: Cohort) -> CohortOut:
    inst = session.get(Institution, cohort.institution_id)
    course = session.get(Course, cohort.course_id)
    return CohortOut(
        id=cohort.id,
        slug=cohort.slug,
        name=cohort.name,
        institution=inst.slug if inst else "",
        course=course.slug if course else "",
    )


def can_see_cohort(session: Session, principal: Principal, cohort: Cohort) -> bool:
    return principal.teaches(cohort) or cohort.id in principal.enrolled_cohorts(session)


def visible_assignment(
    session: Session, principal: Principal, assignment_id: int
) -> tuple[Assignment, Cohort]:
    """The assignment when the caller is enrolled in its cohort or teaches it; else 404."""
    a = get_row(session, Assignment, assignment_id, "assignment")
    cohort = session.get(Cohort, a.cohort_id)
    assert cohort is not None
    if principal.teaches(cohort):
        principal.require_scope("read")
        return a, cohort
    principal.require_scope("learn")
    if cohort.id not in principal.enrolled_cohorts(session):
        raise NotFound(f"no assignment {assignment_id}")
    return a, cohort


def require_open(session: Session, principal: Principal, a: Assignment, cohort: Cohort) -> None:
    """Learners get an assignment's files only from ``opens_at`` on; those who teach it, any
    time (they prepare it)."""
    if principal.teaches(cohort):
        return
    if utcnow() < to_utc(a.opens_at):
        raise Forbidden(f"assignment {a.id} opens at {to_utc(a.opens_at).isoformat()}")


def assignment_out(session: Session, a: Assignment, user_id: int | None = None) -> AssignmentOut:
    course = session.get(Course, a.course_id)
    return AssignmentOut(
        id=a.id,
        cohort_id=a.cohort_id,
        course=course.slug if course else "",
        lab=a.lab,
        name=a.title or a.lab,
        notebook=a.notebook,
        opens_at=a.opens_at,
        due_at=a.due_at,
        my_due_at=subs.effective_due(session, a, user_id) if user_id else a.due_at,
        late_policy=a.late_policy,
        late_penalty_per_day=a.late_penalty_per_day,
        max_score=a.max_score,
    )


def visible_submission(
    session: Session, principal: Principal, submission_id: int
) -> tuple[Submission, Assignment, Cohort]:
    """Own submissions (scope learn) or those of a cohort the caller teaches (scope read)."""
    sub = get_row(session, Submission, submission_id, "submission")
    a = session.get(Assignment, sub.assignment_id)
    cohort = session.get(Cohort, a.cohort_id) if a else None
    assert a is not None and cohort is not None
    if sub.user_id == principal.user_id:
        principal.require_scope("learn")
    elif principal.teaches(cohort):
        principal.require_scope("read")
    else:
        raise NotFound(f"no submission {submission_id}")
    return sub, a, cohort


def submission_out(session: Session, sub: Submission) -> SubmissionOut:
    job = subs.latest_job(session, id_of(sub))
    grade = subs.latest_grade(session, id_of(sub))
    user = session.get(User, sub.user_id)
    status = subs.status_of(sub, job)
    cells = None
    if grade is not None:
        cells = json.loads(grade.cells)
        for cell in cells.values():
            if cell.get("hidden"):
                cell["reason"] = subs.learner_reason(cell)
    return SubmissionOut(
        id=sub.id,
        assignment_id=sub.assignment_id,
        username=user.username if user else "",
        filename=sub.filename,
        sha256=sub.sha256,
        size=sub.size,
        submitted_at=sub.submitted_at,
        late=sub.late_seconds > 0,
        late_seconds=sub.late_seconds,
        status=status,
        score=grade.score if grade else None,
        raw_score=grade.raw_score if grade else None,
        late_penalty=grade.late_penalty if grade else None,
        max_score=grade.max_score if grade else None,
        cells=cells,
        error=(job.last_error or None)
        if job is not None and status == "failed"
        else (
            "submitted after the deadline; kept but not graded (ask for an extension)"
            if status == "rejected"
            else None
        ),
        graded_at=grade.graded_at if grade else None,
    )


def require(cond: bool, message: str) -> None:
    if not cond:
        raise Forbidden(message)
