"""The learner API: who am I, what was released to me, fetch it, submit, see score and feedback."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import Message

from grader.language import LANGUAGES, normalise

from ..db import referenced
from ..models import Assignment, Cohort, Course, Institution, Submission, User, id_of
from ..services import courses as course_svc
from ..services import language as lang_svc
from ..services import submissions as subs
from ..services.access import Principal
from ..services.enrollment import cohorts_named
from ..services.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge
from .common import (
    assignment_out,
    get_row,
    require_open,
    submission_out,
    visible_assignment,
    visible_submission,
)
from .deps import AcademyState, PrincipalDep, SessionDep, StateDep
from .schemas import (
    AssignmentOut,
    EnrollmentOut,
    LanguageIn,
    LanguageOut,
    MeOut,
    ReleaseFile,
    ReleaseOut,
    RoleOut,
    SubmissionOut,
    error_bodies,
)

router = APIRouter(tags=["learner"], responses=error_bodies(401, 403))
ERRORS = error_bodies(404)


@router.get("/me", response_model=MeOut)
def me(session: SessionDep, principal: PrincipalDep) -> MeOut:
    """The caller: user, roles (with their scope) and cohort enrollments."""
    user = principal.user
    roles = []
    for r in principal.roles:
        inst = session.get(Institution, r.institution_id) if r.institution_id else None
        course = session.get(Course, r.course_id) if r.course_id else None
        roles.append(
            RoleOut(
                id=r.id,
                role=r.role,
                institution=inst.slug if inst else None,
                course=course.slug if course else None,
            )
        )
    enrollments = []
    for cohort, inst, course in cohorts_named(session, principal.user_id):
        enrollments.append(
            EnrollmentOut(
                cohort_id=cohort.id, cohort=cohort.slug, institution=inst.slug, course=course.slug
            )
        )
    return MeOut(
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        roles=roles,
        enrollments=enrollments,
        scopes=sorted(principal.scopes),
        language=user.language,
    )


@router.put("/me/language", response_model=LanguageOut, responses=error_bodies(422))
def choose_language(
    body: LanguageIn, request: Request, session: SessionDep, principal: PrincipalDep
) -> LanguageOut:
    """Choose the language of my pages and of the lab notebooks I fetch from now on (null:
    follow the browser's Accept-Language)."""
    user = session.get(User, principal.user_id)
    assert user is not None
    stored = lang_svc.set_language(session, user, body.language)
    session.commit()
    effective = lang_svc.chosen_language(user, request.headers.get("accept-language"))
    return LanguageOut(language=stored, effective=effective)


@router.get("/assignments", response_model=list[AssignmentOut])
def my_assignments(session: SessionDep, principal: PrincipalDep) -> list[AssignmentOut]:
    """Assignments released to the caller's cohorts (open or not yet open)."""
    principal.require_scope("learn")
    cohorts = principal.enrolled_cohorts(session)
    if not cohorts:
        return []
    rows = session.exec(
        select(Assignment)
        .where(col(Assignment.cohort_id).in_(cohorts))
        .order_by(col(Assignment.id))
    ).all()
    return [assignment_out(session, a, principal.user_id) for a in rows]


@router.get("/assignments/{assignment_id}", response_model=AssignmentOut, responses=ERRORS)
def one_assignment(
    assignment_id: int, session: SessionDep, principal: PrincipalDep
) -> AssignmentOut:
    a, _cohort = visible_assignment(session, principal, assignment_id)
    return assignment_out(session, a, principal.user_id)


@router.get(
    "/assignments/{assignment_id}/release",
    response_model=ReleaseOut,
    responses={**ERRORS, **error_bodies(422)},
)
def release_files(
    assignment_id: int,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    state: StateDep,
    language: str | None = None,
) -> ReleaseOut:
    """The learner files of one assignment (solutions and hidden tests removed), base64, in
    ``language`` (``en`` or ``zh-CN``; by default the one I chose, else my browser's): a lab
    not translated into it comes in English."""
    a, cohort = visible_assignment(session, principal, assignment_id)
    require_open(session, principal, a, cohort)
    if language is None:
        lang = lang_svc.chosen_language(principal.user, request.headers.get("accept-language"))
    else:
        chosen = normalise(language)
        if chosen is None:
            raise Invalid(
                f"language {language!r} is not offered: use one of {', '.join(LANGUAGES)}"
            )
        lang = chosen
    root = course_svc.assignment_dir(state.settings, id_of(a)) / "release"
    files = [
        ReleaseFile(
            path=str(p.relative_to(root)),
            size=p.stat().st_size,
            content_base64=base64.b64encode(p.read_bytes()).decode(),
        )
        for p in lang_svc.files_in(course_svc.released_files(state.settings, a), lang)
    ]
    return ReleaseOut(assignment_id=a.id, lab=a.lab, language=lang, files=files)


@router.get(
    "/assignments/{assignment_id}/release/{path:path}",
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
    response_class=FileResponse,
)
def release_file(
    assignment_id: int, path: str, session: SessionDep, principal: PrincipalDep, state: StateDep
) -> FileResponse:
    """One learner file of an assignment, as it is."""
    a, cohort = visible_assignment(session, principal, assignment_id)
    require_open(session, principal, a, cohort)
    root = (course_svc.assignment_dir(state.settings, id_of(a)) / "release").resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise NotFound(f"assignment {assignment_id} has no file {path!r}")
    return FileResponse(target, filename=target.name)


class _Oversize(Exception):
    pass


def _check_can_submit(state: AcademyState, principal: Principal, assignment_id: int) -> Assignment:
    principal.require_scope("learn")
    with Session(state.engine) as session:
        a = get_row(session, Assignment, assignment_id, "assignment")
        if a.cohort_id in principal.enrolled_cohorts(session):
            return a
        cohort = session.get(Cohort, a.cohort_id)
        if cohort is not None and principal.teaches(cohort):
            raise Forbidden("only learners enrolled in the cohort submit; you teach it")
        raise NotFound(f"no assignment {assignment_id}")


def _store(
    state: AcademyState, principal: Principal, a: Assignment, upload: UploadFile
) -> SubmissionOut:
    filename = Path(upload.filename or "notebook.ipynb").name or "notebook.ipynb"
    upload.file.seek(0)
    data = upload.file.read(state.settings.max_upload_bytes + 1)
    if len(data) > state.settings.max_upload_bytes:
        raise TooLarge(_too_large(state.settings.max_upload_bytes))
    subs.check_notebook(data, filename)
    blob = subs.store_stream(state.settings, [data])
    with Session(state.engine, expire_on_commit=False) as session:
        user = referenced(session, User, principal.user_id)
        assignment = referenced(session, Assignment, id_of(a))
        sub, _job = subs.create_submission(session, assignment, user, blob, filename)
        session.commit()
        out = submission_out(session, sub)
    if state.pool is not None:
        state.pool.wake()
    if out.status == "rejected":
        raise Conflict(
            f"the deadline has passed: your notebook was kept as submission {out.id} but will "
            "not be graded; ask your instructor for an extension",
            detail={"submission_id": out.id},
        )
    return out


def _too_large(cap: int) -> str:
    return f"upload larger than {cap // (1024 * 1024)} MiB: clear big outputs (Edit > Clear Outputs of All Cells) and submit again"


async def _drain(request: Request, limit: int = 512 * 1024 * 1024) -> None:
    """Read and drop the rest of a refused body so the client gets our answer, not a reset."""
    seen = 0
    while seen < limit:
        message = await request.receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


MULTIPART = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["notebook"],
                    "properties": {"notebook": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post(
    "/assignments/{assignment_id}/submissions",
    status_code=202,
    response_model=SubmissionOut,
    openapi_extra=MULTIPART,
    responses=error_bodies(404, 409, 413, 422),
)
async def submit(
    assignment_id: int, request: Request, principal: PrincipalDep, state: StateDep
) -> SubmissionOut:
    """Upload a notebook (form field ``notebook``); it is kept and queued for grading (202)."""
    a = await run_in_threadpool(_check_can_submit, state, principal, assignment_id)
    cap = state.settings.max_upload_bytes
    limit = cap + 256 * 1024  # room for the multipart envelope
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        await _drain(request)
        raise TooLarge(_too_large(cap))
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        await _drain(request)
        raise Invalid("send the notebook as multipart/form-data in the field 'notebook'")
    received = 0
    outer = request.receive

    async def capped() -> Message:
        nonlocal received
        message = await outer()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _Oversize()
        return message

    try:
        form = await Request(request.scope, capped).form(max_files=1, max_fields=16)
    except _Oversize:
        await _drain(request)
        raise TooLarge(_too_large(cap)) from None
    try:
        upload = form.get("notebook")
        if not isinstance(upload, UploadFile):
            raise Invalid("send the notebook file in the form field 'notebook'")
        return await run_in_threadpool(_store, state, principal, a, upload)
    finally:
        await form.close()


@router.get(
    "/assignments/{assignment_id}/submissions", response_model=list[SubmissionOut], responses=ERRORS
)
def list_submissions(
    assignment_id: int, session: SessionDep, principal: PrincipalDep
) -> list[SubmissionOut]:
    """Your submissions of an assignment; an instructor sees every learner's."""
    a, cohort = visible_assignment(session, principal, assignment_id)
    query = select(Submission).where(Submission.assignment_id == a.id)
    if not principal.teaches(cohort):
        query = query.where(Submission.user_id == principal.user_id)
    rows = session.exec(query.order_by(col(Submission.id))).all()
    return [submission_out(session, s) for s in rows]


# Pollers revalidate instead of re-reading the whole answer: never cached unchecked.
POLL_CACHE = "private, no-cache"


def _etag_matches(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 13.1.2).

    Anything unparsable simply does not match, so the full answer comes.
    """
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    for part in header.split(","):
        tag = part.strip().removeprefix("W/")
        if tag == wanted:
            return True
    return False


@router.get(
    "/submissions/{submission_id}",
    response_model=SubmissionOut,
    responses={
        **ERRORS,
        304: {"description": "unchanged since the ETag sent in If-None-Match; no body"},
    },
)
def one_submission(
    submission_id: int, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Status (queued, running, graded, failed, rejected), score and per-cell results.

    The answer carries a strong ``ETag`` (a hash of its body): a poller sending it back in
    ``If-None-Match`` gets 304 with no body until the submission changes. Visibility is
    checked first, so a submission the caller may not see stays 404 either way.
    """
    sub, _a, _c = visible_submission(session, principal, submission_id)
    body = submission_out(session, sub).model_dump_json().encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": POLL_CACHE}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "/submissions/{submission_id}/feedback",
    response_class=HTMLResponse,
    responses={**error_bodies(404, 409), 200: {"content": {"text/html": {}}}},
)
def feedback(submission_id: int, session: SessionDep, principal: PrincipalDep) -> HTMLResponse:
    """HTML feedback of the latest grade (test names, points, messages; hidden tests never shown)."""
    sub, _a, _c = visible_submission(session, principal, submission_id)
    grade = subs.latest_grade(session, id_of(sub))
    if grade is None:
        status = subs.status_of(sub, subs.latest_job(session, id_of(sub)))
        raise Conflict(f"no feedback yet: submission {sub.id} is {status}")
    return HTMLResponse(grade.feedback_html)


@router.get(
    "/submissions/{submission_id}/notebook",
    response_class=FileResponse,
    responses={**ERRORS, 200: {"content": {"application/x-ipynb+json": {}}}},
)
def submitted_notebook(
    submission_id: int, session: SessionDep, principal: PrincipalDep, state: StateDep
) -> FileResponse:
    """The notebook exactly as it was uploaded."""
    sub, _a, _c = visible_submission(session, principal, submission_id)
    path = subs.blob_path(state.settings, sub.sha256)
    if not path.is_file():
        raise NotFound(f"the file of submission {sub.id} is missing on the server")
    return FileResponse(path, media_type="application/x-ipynb+json", filename=sub.filename)
