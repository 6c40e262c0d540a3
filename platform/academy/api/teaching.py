"""Courses, cohorts, enrollments and the instructor's work: release, deadlines, regrade, gradebook."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlmodel import Session, col, select

from ..db import referenced
from ..models import (
    Assignment,
    Cohort,
    Course,
    Enrollment,
    Extension,
    Institution,
    Submission,
    User,
    id_of,
    to_utc,
)
from ..services import audit, gradebook
from ..services import courses as course_svc
from ..services import enrollment as enroll_svc
from ..services.access import Principal, require_admin_of, require_platform_admin, require_teacher
from ..services.errors import Invalid, NotFound, TooLarge, found
from ..services.grading import enqueue_regrade
from ..services.identity import ensure_user, user_by_name
from .common import (
    assignment_out,
    can_see_cohort,
    cohort_out,
    course_by_slug,
    get_row,
    institution_by_slug,
    visible_submission,
)
from .deps import AcademyState, PrincipalDep, SessionDep, StateDep, hub_accounts
from .schemas import (
    AssignmentOut,
    CohortIn,
    CohortOut,
    CourseImportIn,
    CourseOut,
    CsvReportOut,
    DeadlineIn,
    EnrollIn,
    EnrollOut,
    ErrorOut,
    ExtensionOut,
    RegradeOut,
    ReleaseIn,
    error_bodies,
)

router = APIRouter(
    tags=["teaching"],
    responses=error_bodies(401, 403, 404),
)
MAX_CSV_BYTES = 5 * 1024 * 1024


def _course_out(c: Course) -> CourseOut:
    return CourseOut(
        id=c.id,
        slug=c.slug,
        title=c.title,
        title_zh=c.title_zh,
        summary=c.summary,
        level=c.level,
        labs=json.loads(c.labs or "[]"),
    )


@router.get("/courses", response_model=list[CourseOut])
def list_courses(session: SessionDep, principal: PrincipalDep) -> list[CourseOut]:
    """The course catalog."""
    return [_course_out(c) for c in session.exec(select(Course).order_by(col(Course.slug))).all()]


@router.post("/courses/import", response_model=CourseOut, responses=error_bodies(422))
def import_course(
    body: CourseImportIn, session: SessionDep, principal: PrincipalDep, state: StateDep
) -> CourseOut:
    """Import or refresh ``courses/<course>/course.toml`` into the catalog (platform admin)."""
    require_platform_admin(principal)
    root = state.settings.courses_dir / body.course
    if "/" in body.course or body.course.startswith(".") or not (root / "course.toml").is_file():
        raise NotFound(
            f"no course folder {body.course!r} with a course.toml in {state.settings.courses_dir}"
        )
    course = course_svc.import_course(session, root)
    audit.record(session, principal, "course.import", "course", course.id, None, slug=course.slug)
    session.commit()
    return _course_out(course)


@router.get("/cohorts", response_model=list[CohortOut])
def list_cohorts(session: SessionDep, principal: PrincipalDep) -> list[CohortOut]:
    """Cohorts you teach or administer, and those you are enrolled in."""
    rows = session.exec(select(Cohort).order_by(col(Cohort.id))).all()
    return [cohort_out(session, c) for c in rows if can_see_cohort(session, principal, c)]


@router.post("/cohorts", response_model=CohortOut, status_code=201, responses=error_bodies(409))
def create_cohort(body: CohortIn, session: SessionDep, principal: PrincipalDep) -> CohortOut:
    """Create a cohort of an institution for one course (institution admin)."""
    from ..services.errors import Conflict
    from ..services.identity import check_slug

    inst = institution_by_slug(session, body.institution)
    require_admin_of(principal, id_of(inst))
    course = course_by_slug(session, body.course)
    check_slug(body.slug, "cohort slug")
    if session.exec(
        select(Cohort).where(Cohort.institution_id == inst.id, Cohort.slug == body.slug)
    ).first():
        raise Conflict(f"cohort {body.slug!r} already exists at {inst.slug}")
    cohort = Cohort(
        institution_id=id_of(inst),
        course_id=id_of(course),
        slug=body.slug,
        name=body.name or body.slug,
    )
    session.add(cohort)
    session.flush()
    audit.record(session, principal, "cohort.create", "cohort", cohort.id, inst.id, slug=body.slug)
    session.commit()
    return cohort_out(session, cohort)


def _cohort_for(session: Session, principal: Principal, cohort_id: int) -> Cohort:
    cohort = get_row(session, Cohort, cohort_id, "cohort")
    if not can_see_cohort(session, principal, cohort):
        raise NotFound(f"no cohort {cohort_id}")
    return cohort


@router.get("/cohorts/{cohort_id}", response_model=CohortOut)
def one_cohort(cohort_id: int, session: SessionDep, principal: PrincipalDep) -> CohortOut:
    return cohort_out(session, _cohort_for(session, principal, cohort_id))


@router.get("/cohorts/{cohort_id}/enrollments", response_model=list[EnrollOut])
def list_enrollments(
    cohort_id: int, session: SessionDep, principal: PrincipalDep
) -> list[EnrollOut]:
    """Learners of a cohort (its instructors and admins)."""
    cohort = _cohort_for(session, principal, cohort_id)
    require_teacher(principal, cohort, "read")
    return [
        EnrollOut(cohort_id=cohort_id, username=u.username, display_name=u.display_name)
        for u in enroll_svc.learners(session, cohort)
    ]


def _enroller(session: Session, principal: Principal, cohort_id: int) -> Cohort:
    cohort = _cohort_for(session, principal, cohort_id)
    require_admin_of(principal, cohort.institution_id, "enroll")
    return cohort


@router.post(
    "/cohorts/{cohort_id}/enrollments",
    response_model=EnrollOut,
    status_code=201,
    responses=error_bodies(409, 422),
)
def enroll_one(
    cohort_id: int, body: EnrollIn, session: SessionDep, principal: PrincipalDep, state: StateDep
) -> EnrollOut:
    """Enroll one learner (created when new); 409 when already enrolled (institution admin)."""
    cohort = _enroller(session, principal, cohort_id)
    user, _ = ensure_user(session, body.username, body.display_name, body.email)
    if user.is_service:
        raise Invalid("a service account cannot be enrolled")
    enroll_svc.enroll(session, principal, cohort, user)
    session.commit()
    hub_accounts(state, [user.username])
    return EnrollOut(cohort_id=cohort_id, username=user.username, display_name=user.display_name)


def _enrolled(session: Session, cohort: Cohort, username: str) -> tuple[User, Enrollment]:
    user = user_by_name(session, username)
    row = enroll_svc.enrollment_of(session, cohort, user)
    return user, found(row, f"{username} is not enrolled in cohort {cohort.slug}")


@router.delete("/cohorts/{cohort_id}/enrollments/{username}", status_code=204)
def unenroll(cohort_id: int, username: str, session: SessionDep, principal: PrincipalDep) -> None:
    """Remove a learner from a cohort (submissions and grades are kept)."""
    cohort = _enroller(session, principal, cohort_id)
    _user, row = _enrolled(session, cohort, username)
    enroll_svc.unenroll(session, principal, cohort, row)
    session.commit()


@router.post(
    "/cohorts/{cohort_id}/enrollments/csv",
    response_model=CsvReportOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
    responses={413: {"model": ErrorOut}, 422: {"model": CsvReportOut}},
)
async def enroll_csv(
    cohort_id: int, request: Request, principal: PrincipalDep, state: StateDep
) -> JSONResponse:
    """Enroll from a CSV (header: username[,display_name,email]): every row or none.

    Idempotent: learners already enrolled are reported ``already_enrolled``.  When any row is
    wrong nothing is applied and the answer is 422 with the per-row report.
    """
    from starlette.concurrency import run_in_threadpool

    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CSV_BYTES:
            raise TooLarge("CSV larger than 5 MiB: split it into several uploads")
    try:
        text = bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("the CSV is not UTF-8 text; save it as CSV UTF-8") from None
    return await run_in_threadpool(_apply_csv, state, principal, cohort_id, text)


def _apply_csv(
    state: AcademyState, principal: Principal, cohort_id: int, text: str
) -> JSONResponse:
    from sqlmodel import Session

    with Session(state.engine, expire_on_commit=False) as session:
        cohort = _enroller(session, principal, cohort_id)
        applied, report = enroll_svc.enroll_csv(session, principal, cohort, text)
        if applied:
            session.commit()
            hub_accounts(state, [r.username for r in report])
        else:
            session.rollback()
    counts = {
        s: sum(1 for r in report if r.status == s)
        for s in ("enrolled", "already_enrolled", "error")
    }
    body = {
        "applied": applied,
        "enrolled": counts["enrolled"] if applied else 0,
        "already_enrolled": counts["already_enrolled"],
        "errors": counts["error"],
        "rows": enroll_svc.report_json(report),
    }
    if not applied:
        first = next(r for r in report if r.status == "error")
        body["detail"] = (
            f"{counts['error']} row(s) have errors (first: row {first.row}: {first.message}); "
            "nothing was applied"
        )
    return JSONResponse(body, status_code=200 if applied else 422)


@router.get("/cohorts/{cohort_id}/assignments", response_model=list[AssignmentOut])
def cohort_assignments(
    cohort_id: int, session: SessionDep, principal: PrincipalDep
) -> list[AssignmentOut]:
    cohort = _cohort_for(session, principal, cohort_id)
    rows = session.exec(
        select(Assignment).where(Assignment.cohort_id == cohort.id).order_by(col(Assignment.id))
    ).all()
    return [assignment_out(session, a, principal.user_id) for a in rows]


@router.post(
    "/cohorts/{cohort_id}/assignments",
    response_model=AssignmentOut,
    status_code=201,
    responses=error_bodies(409, 422),
)
def release(
    cohort_id: int, body: ReleaseIn, session: SessionDep, principal: PrincipalDep, state: StateDep
) -> AssignmentOut:
    """Release a lab of the cohort's course: learner notebooks made with nbgrader's rules."""
    cohort = _cohort_for(session, principal, cohort_id)
    require_teacher(principal, cohort)
    a = course_svc.release_lab(
        session,
        state.settings,
        principal,
        cohort,
        body.lab,
        opens_at=body.opens_at,
        due_at=body.due_at,
        late_policy=body.late_policy,
        late_penalty_per_day=body.late_penalty_per_day,
    )
    session.commit()
    return assignment_out(session, a)


def _teacher_assignment(
    session: Session, principal: Principal, assignment_id: int
) -> tuple[Assignment, Cohort]:
    a = get_row(session, Assignment, assignment_id, "assignment")
    cohort = referenced(session, Cohort, a.cohort_id)
    if not can_see_cohort(session, principal, cohort):
        raise NotFound(f"no assignment {assignment_id}")
    require_teacher(principal, cohort)
    return a, cohort


@router.patch(
    "/assignments/{assignment_id}",
    response_model=AssignmentOut,
    responses=error_bodies(422),
)
def set_deadline(
    assignment_id: int, body: DeadlineIn, session: SessionDep, principal: PrincipalDep
) -> AssignmentOut:
    """Move the cohort's due date (e.g. extend it for everyone)."""
    a, cohort = _teacher_assignment(session, principal, assignment_id)
    due = to_utc(body.due_at)
    if due <= a.opens_at:
        raise Invalid("due_at must be after the assignment opens")
    audit.record(
        session,
        principal,
        "assignment.deadline",
        "assignment",
        a.id,
        cohort.institution_id,
        before=a.due_at,
        after=due,
    )
    a.due_at = due
    session.add(a)
    session.commit()
    return assignment_out(session, a)


@router.put(
    "/assignments/{assignment_id}/extensions/{username}",
    response_model=ExtensionOut,
    responses=error_bodies(422),
)
def extend_for(
    assignment_id: int,
    username: str,
    body: DeadlineIn,
    session: SessionDep,
    principal: PrincipalDep,
) -> ExtensionOut:
    """Give one learner a later due date on one assignment."""
    a, cohort = _teacher_assignment(session, principal, assignment_id)
    user, _row = _enrolled(session, cohort, username)
    due = to_utc(body.due_at)
    if due <= a.opens_at:
        raise Invalid("due_at must be after the assignment opens")
    ext = session.exec(
        select(Extension).where(Extension.assignment_id == a.id, Extension.user_id == user.id)
    ).first()
    before = ext.due_at if ext else None
    ext = ext or Extension(assignment_id=id_of(a), user_id=id_of(user), due_at=due)
    ext.due_at = due
    session.add(ext)
    audit.record(
        session,
        principal,
        "assignment.extension",
        "assignment",
        a.id,
        cohort.institution_id,
        user=username,
        before=before,
        after=due,
    )
    session.commit()
    return ExtensionOut(assignment_id=a.id, username=username, due_at=due)


@router.post("/assignments/{assignment_id}/regrade", response_model=RegradeOut, status_code=202)
def regrade_all(
    assignment_id: int, session: SessionDep, principal: PrincipalDep, state: StateDep
) -> RegradeOut:
    """Grade every accepted submission of the assignment again (new jobs; old grades kept)."""
    a, _cohort = _teacher_assignment(session, principal, assignment_id)
    rows = session.exec(
        select(Submission).where(
            Submission.assignment_id == a.id, col(Submission.accepted).is_(True)
        )
    ).all()
    for sub in rows:
        enqueue_regrade(session, principal, sub)
    session.commit()
    if state.pool is not None:
        state.pool.wake()
    return RegradeOut(queued=len(rows))


@router.post("/submissions/{submission_id}/regrade", response_model=RegradeOut, status_code=202)
def regrade_one(
    submission_id: int, session: SessionDep, principal: PrincipalDep, state: StateDep
) -> RegradeOut:
    """Grade one submission again (also one kept after the deadline under a reject policy)."""
    sub, _a, cohort = visible_submission(session, principal, submission_id)
    require_teacher(principal, cohort)
    if not sub.accepted:
        sub.accepted = True
        session.add(sub)
    enqueue_regrade(session, principal, sub)
    session.commit()
    if state.pool is not None:
        state.pool.wake()
    return RegradeOut(queued=1)


@router.get(
    "/cohorts/{cohort_id}/gradebook.csv",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def gradebook_csv(
    cohort_id: int, session: SessionDep, principal: PrincipalDep
) -> PlainTextResponse:
    """The cohort's gradebook, one row per assignment and learner, like ``nbgrader export``."""
    cohort = _cohort_for(session, principal, cohort_id)
    require_teacher(principal, cohort, "read")
    inst = session.get(Institution, cohort.institution_id)
    return PlainTextResponse(
        gradebook.to_csv(gradebook.rows(session, cohort)),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{inst.slug if inst else "x"}-{cohort.slug}-grades.csv"'
        },
    )
