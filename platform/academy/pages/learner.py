"""A learner's own pages: my courses, my labs with the status of my chain, my submissions with
score and feedback, my certificates with download and share link.

Each page reads only rows of the signed-in user: another learner's submission is "not found", the
same answer as one that does not exist, so ids reveal nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from ..api.common import submission_out, visible_submission
from ..api.credentials import share as share_credential
from ..api.deps import StateDep
from ..models import (
    Assignment,
    Course,
    CredentialRecord,
    Submission,
    User,
    id_of,
)
from ..services import credentials as cred_svc
from ..services import submissions as subs
from ..services.access import Principal
from ..services.enrollment import cohorts_named
from ..services.labchains import learner_envs
from ..services.language import set_language
from .i18n import MESSAGES, text
from .layout import ViewerDep, esc, facts, in_session, lang_of, notice, page, table

router = APIRouter(prefix="/me", include_in_schema=False)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def course_title(lang: str, course: Course) -> str:
    return (course.title_zh if lang == "zh" and course.title_zh else course.title) or course.slug


def lab_titles(course: Course, lang: str) -> dict[str, str]:
    titles = {}
    for lab in json.loads(course.labs or "[]"):
        zh = lab.get("title_zh") if lang == "zh" else None
        titles[lab["id"]] = zh or lab.get("title") or lab["id"]
    return titles


def _reason(lang: str, reason: str) -> str:
    """A graded cell's message; the grader's own words about a hidden test in ``lang`` (a
    test's message is already in the language of the notebook it came from)."""
    raised = re.fullmatch(r"hidden test raised (\w+)", reason)
    if raised:
        return text(lang, "hidden_raised").format(ename=raised[1])
    return text(lang, "hidden_failed") if reason == "hidden test failed" else reason


def _points(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def status_text(lang: str, status: str, prefix: str = "st_") -> str:
    """A submission's (``st_``) or a graded cell's (``cs_``) status in ``lang``."""
    return text(lang, prefix + status) if prefix + status in MESSAGES else status


def _latest_mine(session: Session, principal: Principal) -> dict[int, Submission]:
    latest: dict[int, Submission] = {}
    for s in session.exec(
        select(Submission)
        .where(Submission.user_id == principal.user_id)
        .order_by(col(Submission.id))
    ):
        latest[s.assignment_id] = s
    return latest


@router.get("/", response_class=HTMLResponse)
async def my_courses(request: Request, state: StateDep, principal: ViewerDep) -> HTMLResponse:
    """The courses I am enrolled in, with how many of their labs are graded."""
    lang, base = lang_of(request), state.settings.base_path
    principal.require_scope("learn")

    def work(session: Session) -> str:
        latest = _latest_mine(session, principal)
        rows = []
        for cohort, inst, course in cohorts_named(session, principal.user_id):
            labs = session.exec(select(Assignment).where(Assignment.cohort_id == cohort.id)).all()
            graded = sum(
                1
                for a in labs
                if a.id in latest and subs.latest_grade(session, id_of(latest[a.id])) is not None
            )
            rows.append(
                [
                    esc(course_title(lang, course)),
                    esc(inst.name),
                    esc(cohort.name or cohort.slug),
                    f"{graded} / {len(labs)}",
                ]
            )
        if not rows:
            return f"<p>{esc(text(lang, 'no_courses'))}</p>"
        headers = [text(lang, k) for k in ("course", "institution", "cohort", "labs_graded")]
        body = table(headers, rows, "courses")
        return body + (
            f'<p><a href="{esc(base)}/me/labs">{esc(text(lang, "my_labs"))}</a> · '
            f'<a href="{esc(base)}/me/submissions">{esc(text(lang, "my_submissions"))}</a> · '
            f'<a href="{esc(base)}/me/certificates">{esc(text(lang, "my_certificates"))}</a></p>'
        )

    body = await in_session(state, work)
    return page(lang, text(lang, "my_courses"), body + _language_form(lang, base, principal), base)


def _language_form(lang: str, base: str, principal: Principal) -> str:
    chosen = principal.user.language or ""
    options = "".join(
        f'<option value="{value}"{" selected" if value == chosen else ""}>{esc(label)}</option>'
        for value, label in (
            ("", text(lang, "follow_browser")),
            ("en", "English"),
            ("zh-CN", "简体中文"),
        )
    )
    return (
        f'<form method="post" action="{esc(base)}/me/language" id="language-form">'
        f'<label for="language">{esc(text(lang, "language"))}</label> '
        f'<select id="language" name="language">{options}</select> '
        f'<button type="submit">{esc(text(lang, "save"))}</button>'
        f'<p class="muted">{esc(text(lang, "language_note"))}</p></form>'
    )


@router.post("/language")
async def choose_language(
    state: StateDep, principal: ViewerDep, language: str = Form("")
) -> RedirectResponse:
    """The form behind the language choice: stored on the user, as the API's PUT /me/language."""

    def work(session: Session) -> None:
        user = session.get(User, principal.user_id)
        assert user is not None
        set_language(session, user, language or None)
        session.commit()

    await in_session(state, work)
    return RedirectResponse(f"{state.settings.base_path}/me/", 303)


@router.get("/labs", response_class=HTMLResponse)
async def my_labs(request: Request, state: StateDep, principal: ViewerDep) -> HTMLResponse:
    """Every lab released to me: its due date, my latest submission and my chain for it."""
    lang, base, settings = lang_of(request), state.settings.base_path, state.settings
    principal.require_scope("learn")
    envs = await run_in_threadpool(learner_envs, settings, principal.user.username)
    by_lab = {e.lab_id: e for e in envs}

    def chain_cell(env: Any) -> str:
        if env is None:
            return esc(text(lang, "no_chain"))
        label = text(lang, env.status) if env.status in ("running", "stopped") else env.status
        return (
            f'<span class="{"ok" if env.status == "running" else "bad"}">{esc(label)}</span> · '
            f'<a href="{esc(base)}/explorer/{esc(env.env_id)}">{esc(text(lang, "explorer"))}</a>'
        )

    def work(session: Session) -> str:
        latest = _latest_mine(session, principal)
        rows, used = [], set()
        for cohort, _inst, course in cohorts_named(session, principal.user_id):
            titles = lab_titles(course, lang)
            for a in session.exec(
                select(Assignment)
                .where(Assignment.cohort_id == cohort.id)
                .order_by(col(Assignment.id))
            ):
                sub = latest.get(id_of(a))
                state_cell = esc(text(lang, "not_submitted"))
                if sub is not None:
                    st = subs.status_of(sub, subs.latest_job(session, id_of(sub)))
                    state_cell = (
                        f'<a href="{esc(base)}/me/submissions/{sub.id}">'
                        f"{esc(status_text(lang, st))}</a>"
                    )
                used.add(a.lab)
                rows.append(
                    [
                        esc(titles.get(a.lab, a.title or a.lab)),
                        esc(course_title(lang, course)),
                        esc(_when(subs.effective_due(session, a, principal.user_id))),
                        state_cell,
                        chain_cell(by_lab.get(a.lab)),
                    ]
                )
        headers = [text(lang, k) for k in ("lab", "course", "due", "my_submission", "my_chain")]
        body = table(headers, rows, "labs") if rows else f"<p>{esc(text(lang, 'no_labs'))}</p>"
        others = [e for e in envs if e.lab_id not in used]
        if others:
            orows = [[esc(e.lab_id), chain_cell(e)] for e in others]
            body += f"<h2>{esc(text(lang, 'other_chains'))}</h2>"
            body += table([text(lang, "lab"), text(lang, "my_chain")], orows, "chains")
        return body

    body = await in_session(state, work)
    return page(lang, text(lang, "my_labs"), body, base)


@router.get("/submissions", response_class=HTMLResponse)
async def my_submissions(request: Request, state: StateDep, principal: ViewerDep) -> HTMLResponse:
    """All my submissions, newest first, with status and score."""
    lang, base = lang_of(request), state.settings.base_path
    principal.require_scope("learn")

    def work(session: Session) -> str:
        rows = []
        for sub, a in session.exec(
            select(Submission, Assignment)
            .join(Assignment, col(Assignment.id) == col(Submission.assignment_id))
            .where(Submission.user_id == principal.user_id)
            .order_by(col(Submission.id).desc())
        ):
            out = submission_out(session, sub)
            rows.append(
                [
                    f'<a href="{esc(base)}/me/submissions/{sub.id}">#{sub.id}</a>',
                    esc(a.title or a.lab),
                    esc(_when(sub.submitted_at)),
                    esc(status_text(lang, out.status)),
                    f"{_points(out.score)} / {_points(out.max_score)}"
                    if out.score is not None
                    else "—",
                    esc(text(lang, "yes") if out.late else text(lang, "no")),
                ]
            )
        if not rows:
            return f"<p>{esc(text(lang, 'no_submissions'))}</p>"
        keys = ("submission", "lab", "submitted_at", "status", "score", "late")
        return table([text(lang, k) for k in keys], rows, "submissions")

    body = await in_session(state, work)
    return page(lang, text(lang, "my_submissions"), body, base)


@router.get("/submissions/{submission_id}", response_class=HTMLResponse)
async def one_submission(
    submission_id: int, request: Request, state: StateDep, principal: ViewerDep
) -> HTMLResponse:
    """One submission: score, each test's points and message, and the feedback report."""
    lang, base = lang_of(request), state.settings.base_path

    def work(session: Session) -> tuple[str, str]:
        sub, a, _cohort = visible_submission(session, principal, submission_id)
        out = submission_out(session, sub)
        course = session.get(Course, a.course_id)
        lab = (lab_titles(course, lang) if course else {}).get(a.lab, a.title or a.lab)
        title = f"{text(lang, 'submission')} #{sub.id} · {lab}"
        pairs = [
            (text(lang, "learner"), esc(out.username)),
            (text(lang, "submitted_at"), esc(_when(sub.submitted_at))),
            (
                text(lang, "status"),
                f'<span id="status">{esc(status_text(lang, out.status))}</span>',
            ),
        ]
        if out.score is not None:
            score = f"{_points(out.score)} / {_points(out.max_score)}"
            pairs.append((text(lang, "score"), f'<strong id="score">{esc(score)}</strong>'))
            if out.late_penalty:
                pairs.append((text(lang, "late_penalty"), esc(_points(out.late_penalty))))
        if out.error:
            pairs.append((text(lang, "problem"), f'<span class="bad">{esc(out.error)}</span>'))
        body = facts(pairs, "summary")
        if out.cells:
            rows = [
                [
                    f"<code>{esc(test)}</code>",
                    f"{_points(c.get('points'))} / {_points(c.get('max_points'))}",
                    esc(status_text(lang, c.get("status", ""), "cs_")),
                    esc(_reason(lang, c.get("reason") or "")),
                ]
                for test, c in out.cells.items()
                if c.get("max_points")
            ]
            body += f"<h2>{esc(text(lang, 'tests'))}</h2>"
            body += table(
                [text(lang, k) for k in ("test", "points", "status", "message")], rows, "cells"
            )
        if out.status == "graded":
            src = f"{base}/api/submissions/{sub.id}/feedback"
            body += (
                f"<h2>{esc(text(lang, 'feedback'))}</h2>"
                f'<iframe id="feedback" src="{esc(src)}" title="{esc(text(lang, "feedback"))}" '
                'sandbox="" style="width:100%;min-height:20rem;border:1px solid #ccc"></iframe>'
            )
        return title, body

    title, body = await in_session(state, work)
    return page(lang, title, body, base)


@router.get("/certificates", response_class=HTMLResponse)
async def my_certificates(
    request: Request, state: StateDep, principal: ViewerDep, shared: str = ""
) -> HTMLResponse:
    """My certificates: download the file, or make a link anyone can open to verify it."""
    lang, base, settings = lang_of(request), state.settings.base_path, state.settings

    def work(session: Session) -> str:
        rows = []
        records = session.exec(
            select(CredentialRecord)
            .where(CredentialRecord.user_id == principal.user_id)
            .order_by(col(CredentialRecord.id))
        ).all()
        for r in records:
            course = session.get(Course, r.course_id)
            standing = "revoked" if r.revoked else "suspended" if r.suspended else "valid"
            if r.share_token:
                link = cred_svc.share_url(settings, r.share_token)
                share_cell = f'<a class="share" href="{esc(link)}">{esc(link)}</a>'
            else:
                share_cell = (
                    f'<form class="inline" method="post" action="{esc(base)}/me/certificates/share">'
                    f'<input type="hidden" name="uid" value="{esc(r.uid)}">'
                    f'<button type="submit">{esc(text(lang, "make_share"))}</button></form>'
                )
            rows.append(
                [
                    esc(course_title(lang, course) if course else ""),
                    esc(_when(r.issued_at)),
                    esc(text(lang, f"v_{standing}")),
                    f'<a class="download" href="{esc(base)}/api/credentials/{esc(r.uid)}" download>'
                    f"{esc(text(lang, 'download'))}</a>",
                    share_cell,
                ]
            )
        if not rows:
            return f"<p>{esc(text(lang, 'no_certificates'))}</p>"
        keys = ("course", "issued_at", "standing", "file", "share_link")
        return table([text(lang, k) for k in keys], rows, "certificates")

    body = await in_session(state, work)
    if shared:
        body = notice(text(lang, "share_made")) + body
    return page(lang, text(lang, "my_certificates"), body, base)


@router.post("/certificates/share")
async def make_share_link(
    state: StateDep, principal: ViewerDep, uid: str = Form(...)
) -> RedirectResponse:
    """The form behind "Make a share link": the same rule as the API (only the learner shares)."""
    await in_session(state, lambda s: share_credential(uid, s, principal, state))
    return RedirectResponse(f"{state.settings.base_path}/me/certificates?shared=1", 303)
