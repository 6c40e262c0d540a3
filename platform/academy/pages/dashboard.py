"""The instructor dashboard: per cohort, progress per assignment, grade distributions, the hidden
tests that fail most, late and missing submissions, and the actions that follow from them
(regrade, move a deadline, extend it for one learner, issue certificates).

Only cohorts the signed-in user teaches or administers appear; any other cohort id is "not found".
Actions are plain HTML forms posted back here, which call the very functions behind the REST API,
so the rules (who may, what is valid, what is audited) are the API's, then redirect to the
dashboard with a one-line outcome (post/redirect/get: reloading never repeats an action).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session, col, select

from ..api import credentials as cred_api
from ..api import teaching
from ..api.common import get_row
from ..api.deps import AcademyState, StateDep
from ..api.schemas import DeadlineIn
from ..models import Cohort, Course, CredentialRecord, User
from ..services import credentials as cred_svc
from ..services.access import Principal, require_teacher
from ..services.enrollment import cohorts_named
from ..services.errors import AcademyError, Conflict, Forbidden, Invalid, NotFound, Unavailable
from ..services.progress import AssignmentProgress, cohort_progress, histogram
from .charts import heat_style, histogram_svg
from .i18n import text
from .layout import ViewerDep, esc, in_session, lang_of, notice, page, table
from .learner import course_title, lab_titles

router = APIRouter(prefix="/dashboard", include_in_schema=False)


def _taught(session: Session, principal: Principal, cohort_id: int) -> Cohort:
    cohort = get_row(session, Cohort, cohort_id, "cohort")
    if not principal.teaches(cohort):
        raise NotFound(f"no cohort {cohort_id}")
    require_teacher(principal, cohort, "read")
    return cohort


@router.get("/", response_class=HTMLResponse)
async def my_cohorts(request: Request, state: StateDep, principal: ViewerDep) -> HTMLResponse:
    """The cohorts I teach or administer."""
    lang, base = lang_of(request), state.settings.base_path
    principal.require_scope("read")

    def work(session: Session) -> str:
        rows = []
        for cohort, inst, course in cohorts_named(session):
            if principal.teaches(cohort):
                rows.append(
                    [
                        f'<a href="{esc(base)}/dashboard/{cohort.id}">'
                        f"{esc(cohort.name or cohort.slug)}</a>",
                        esc(course_title(lang, course)),
                        esc(inst.name),
                    ]
                )
        if not rows:
            return f"<p>{esc(text(lang, 'no_cohorts'))}</p>"
        return table([text(lang, k) for k in ("cohort", "course", "institution")], rows, "cohorts")

    body = await in_session(state, work)
    return page(lang, text(lang, "dashboard"), body, base)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _hours(seconds: float) -> str:
    """How late, in the unit that reads best: minutes, hours, then days."""
    if seconds < 3600:
        return f"{max(seconds / 60, 1):.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 2 * 86400 else f"{seconds / 86400:.1f} d"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _progress_table(lang: str, rows: list[AssignmentProgress], titles: dict[str, str]) -> str:
    cells = [
        [
            f'<a href="#a{r.assignment.id}">{esc(titles.get(r.assignment.lab, r.assignment.lab))}</a>',
            esc(_when(r.due_at)),
            f'<progress max="{r.enrolled or 1}" value="{r.submitted}" '
            f'aria-label="{esc(text(lang, "submitted"))}"></progress> {r.submitted} / {r.enrolled}',
            f"{r.graded}" + (f" (+{r.pending} {esc(text(lang, 'pending'))})" if r.pending else ""),
            esc(_pct(r.mean)),
            str(len(r.late)),
            str(len(r.missing)),
        ]
        for r in rows
    ]
    keys = ("lab", "due", "submitted", "graded", "mean_score", "late", "missing_subs")
    return table([text(lang, k) for k in keys], cells, "progress", text(lang, "progress"))


def _heat_map(lang: str, progress: Any, titles: dict[str, str]) -> str:
    if not progress.hidden:
        return f'<p id="heat">{esc(text(lang, "no_hidden"))}</p>'
    rows = []
    for h in progress.hidden:
        reason = h.reasons.most_common(1)[0][0] if h.reasons else ""
        rows.append(
            [
                esc(titles.get(h.assignment, h.assignment)),
                f"<code>{esc(h.test)}</code>",
                f'<span class="heatcell" style="display:block;padding:.2rem;{heat_style(h.fail_rate)}" '
                f'data-rate="{h.fail_rate:.2f}">{esc(_pct(h.fail_rate))}</span>',
                f"{h.failed} / {h.graded}",
                esc(reason),
            ]
        )
    keys = ("lab", "test", "fail_rate", "failed_of", "common_reason")
    ranked = table([text(lang, k) for k in keys], rows, "heat", text(lang, "heat_caption"))
    return ranked + _heat_grid(lang, progress, titles)


GRID_LEARNERS = 40


def _heat_grid(lang: str, progress: Any, titles: dict[str, str]) -> str:
    """Hidden tests x learners, those failing most first: who is stuck where (a cohort larger than
    GRID_LEARNERS shows the learners with the most failures)."""
    fails: dict[str, int] = {}
    for h in progress.hidden:
        for learner, ok in h.passed_by.items():
            fails[learner] = fails.get(learner, 0) + (not ok)
    learners = sorted(fails, key=lambda name: (-fails[name], name))[:GRID_LEARNERS]
    marks = {True: ("✓", "pass", 0.0), False: ("✗", "fail", 1.0)}
    head = "".join(f'<th scope="col" class="heat">{esc(n)}</th>' for n in learners)
    body = ""
    for h in progress.hidden:
        label = f"{titles.get(h.assignment, h.assignment)} · {h.test}"
        cells = ""
        for name in learners:
            if name not in h.passed_by:
                cells += f'<td class="heat" title="{esc(name)}">—</td>'
                continue
            mark, word, rate = marks[h.passed_by[name]]
            cells += (
                f'<td class="heat" style="{heat_style(rate)}" data-learner="{esc(name)}" '
                f'data-outcome="{word}" title="{esc(name)}: {esc(text(lang, "o_" + word))}">'
                f"{mark}</td>"
            )
        body += f'<tr><th scope="row"><code>{esc(label)}</code></th>{cells}</tr>'
    caption = text(lang, "heat_grid_caption").format(n=len(learners))
    return (
        f'<table id="heat-grid"><caption>{esc(caption)}</caption><thead><tr>'
        f'<th scope="col">{esc(text(lang, "test"))}</th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _actions(
    lang: str, base: str, cohort_id: int, r: AssignmentProgress, learners: list[User]
) -> str:
    a = r.assignment
    act = f"{base}/dashboard/{cohort_id}/assignments/{a.id}"
    due = a.due_at.strftime("%Y-%m-%dT%H:%M") if a.due_at else ""
    options = "".join(
        f'<option value="{esc(u.username)}">{esc(u.username)}</option>' for u in learners
    )
    return (
        f'<form class="inline" method="post" action="{esc(act)}/regrade">'
        f'<button type="submit" id="regrade-{a.id}">{esc(text(lang, "regrade_all"))}</button></form>'
        f'<form class="inline" method="post" action="{esc(act)}/deadline">'
        f'<label for="due-{a.id}">{esc(text(lang, "new_deadline"))}</label> '
        f'<input type="datetime-local" id="due-{a.id}" name="due_at" value="{esc(due)}" required> '
        f'<button type="submit">{esc(text(lang, "set_deadline"))}</button></form>'
        f'<form class="inline" method="post" action="{esc(act)}/extension">'
        f'<label for="ext-user-{a.id}">{esc(text(lang, "learner"))}</label> '
        f'<select id="ext-user-{a.id}" name="username" required>{options}</select> '
        f'<label for="ext-due-{a.id}">{esc(text(lang, "extend_until"))}</label> '
        f'<input type="datetime-local" id="ext-due-{a.id}" name="due_at" required> '
        f'<button type="submit">{esc(text(lang, "extend"))}</button></form>'
    )


def _assignment_section(
    lang: str, base: str, cohort_id: int, r: AssignmentProgress, title: str, learners: list[User]
) -> str:
    a = r.assignment
    counts = histogram(r.scores)
    desc = text(lang, "dist_desc").format(n=len(r.scores), mean=_pct(r.mean))
    out = f'<section id="a{a.id}" aria-labelledby="a{a.id}-h"><h2 id="a{a.id}-h">{esc(title)}</h2>'
    out += f"<h3>{esc(text(lang, 'distribution'))}</h3>"
    out += histogram_svg(counts, f"{text(lang, 'distribution')}: {title}", desc, f"dist-{a.id}")
    out += f"<h3>{esc(text(lang, 'late'))}</h3>"
    if r.late:
        rows = [
            [
                esc(row.learner),
                esc(_hours(row.late_seconds)),
                esc(text(lang, "yes") if row.accepted else text(lang, "no")),
                f'<form class="inline" method="post" action="{esc(base)}/dashboard/{cohort_id}'
                f'/submissions/{row.submission_id}/regrade"><button type="submit">'
                f"{esc(text(lang, 'accept_regrade' if not row.accepted else 'regrade'))}</button></form>",
            ]
            for row in r.late
        ]
        keys = ("learner", "late_by", "accepted", "action")
        out += table([text(lang, k) for k in keys], rows, f"late-{a.id}")
    else:
        out += f"<p>{esc(text(lang, 'none'))}</p>"
    out += f"<h3>{esc(text(lang, 'missing_subs'))}</h3>"
    if r.missing:
        items = "".join(
            f"<li>{esc(name)}"
            + (f' <span class="bad">({esc(text(lang, "overdue"))})</span>' if overdue else "")
            + "</li>"
            for name, overdue in r.missing
        )
        out += f'<ul id="missing-{a.id}">{items}</ul>'
    else:
        out += f"<p>{esc(text(lang, 'none'))}</p>"
    out += f"<h3>{esc(text(lang, 'actions'))}</h3>" + _actions(lang, base, cohort_id, r, learners)
    return out + "</section>"


def _certificates(
    lang: str, base: str, session: Session, principal: Principal, cohort: Cohort
) -> str:
    if not principal.admin_of(cohort.institution_id):
        return ""
    out = f'<section id="certs" aria-labelledby="certs-h"><h2 id="certs-h">{esc(text(lang, "certificates"))}</h2>'
    ready = cred_svc.eligible(session, cohort)
    issued = session.exec(
        select(CredentialRecord, User)
        .join(User, col(User.id) == col(CredentialRecord.user_id))
        .where(CredentialRecord.cohort_id == cohort.id)
        .order_by(col(CredentialRecord.id))
    ).all()
    if issued:
        rows = [
            [
                esc(u.username),
                esc(_when(r.issued_at)),
                esc(
                    text(
                        lang,
                        "v_revoked" if r.revoked else "v_suspended" if r.suspended else "v_valid",
                    )
                ),
            ]
            for r, u in issued
        ]
        out += table([text(lang, k) for k in ("learner", "issued_at", "standing")], rows, "issued")
    if ready:
        names = ", ".join(u.username for u, _ in ready)
        out += (
            f'<p id="eligible">{esc(text(lang, "eligible"))}: {esc(names)}</p>'
            f'<form method="post" action="{esc(base)}/dashboard/{cohort.id}/issue">'
            f'<button type="submit" id="issue">{esc(text(lang, "issue"))}</button></form>'
        )
    else:
        out += f'<p id="eligible">{esc(text(lang, "none_eligible"))}</p>'
    return out + "</section>"


@router.get("/{cohort_id}", response_class=HTMLResponse)
async def cohort_dashboard(
    cohort_id: int,
    request: Request,
    state: StateDep,
    principal: ViewerDep,
    done: str = "",
    error: str = "",
) -> HTMLResponse:
    """One cohort: progress, distributions, hidden-test heat map, late and missing, actions."""
    lang, base = lang_of(request), state.settings.base_path

    def work(session: Session) -> tuple[str, str]:
        cohort = _taught(session, principal, cohort_id)
        course = session.get(Course, cohort.course_id)
        titles = lab_titles(course, lang) if course else {}
        progress = cohort_progress(session, cohort)
        title = f"{text(lang, 'dashboard')} · {cohort.name or cohort.slug}"
        body = ""
        # only fixed texts chosen by key: a link to this page cannot put words on it
        if f"done_{done}" in _DONE:
            body += notice(text(lang, f"done_{done}"))
        if error:
            key = f"err_{error}" if f"err_{error}" in _ERRORS else "err_failed"
            body += notice(text(lang, key), bad=True)
        body += f'<p>{esc(text(lang, "learners"))}: <strong id="enrolled">{len(progress.learners)}</strong> · '
        body += f'<a href="{esc(base)}/api/cohorts/{cohort.id}/gradebook.csv">{esc(text(lang, "gradebook_csv"))}</a></p>'
        body += _progress_table(lang, progress.assignments, titles)
        body += f'<h2 id="heat-h">{esc(text(lang, "hidden_fail"))}</h2>' + _heat_map(
            lang, progress, titles
        )
        for r in progress.assignments:
            name = titles.get(r.assignment.lab, r.assignment.title or r.assignment.lab)
            body += _assignment_section(lang, base, cohort_id, r, name, progress.learners)
        body += _certificates(lang, base, session, principal, cohort)
        return title, body

    title, body = await in_session(state, work)
    return page(lang, title, body, base)


_DONE = {"done_regrade", "done_deadline", "done_extension", "done_issue"}
_ERRORS = {
    "err_bad_date",
    "err_nobody_eligible",
    "err_invalid",
    "err_forbidden",
    "err_conflict",
    "err_unavailable",
    "err_failed",
}
_ERROR_KEYS = {Invalid: "invalid", Forbidden: "forbidden", Conflict: "conflict",
               Unavailable: "unavailable"}  # fmt: skip


def _error_key(exc: AcademyError) -> str:
    """The message key for a failed action: the error's own key, else its kind."""
    if isinstance(exc.detail, dict) and f"err_{exc.detail.get('key')}" in _ERRORS:
        return str(exc.detail["key"])
    return next((k for cls, k in _ERROR_KEYS.items() if isinstance(exc, cls)), "failed")


async def _act(
    state: AcademyState,
    cohort_id: int,
    principal: Principal,
    what: str,
    work: Any,
    then: Any = None,
) -> RedirectResponse:
    """Run one action in its own session (``then``: an API coroutine to await after the checks);
    come back to the dashboard saying how it went."""

    def run(session: Session) -> None:
        _taught(session, principal, cohort_id)
        work(session)

    try:
        await in_session(state, run)
        if then is not None:
            with Session(state.engine, expire_on_commit=False) as session:
                await then(session)
        query = {"done": what}
    except NotFound:
        raise
    except AcademyError as exc:
        query = {"error": _error_key(exc)}
    return RedirectResponse(
        f"{state.settings.base_path}/dashboard/{cohort_id}?{urlencode(query)}", 303
    )


def _due(value: str) -> DeadlineIn:
    try:
        return DeadlineIn(due_at=datetime.fromisoformat(value))
    except ValueError:
        raise Invalid(
            f"not a date and time: {value!r}; use the date picker (YYYY-MM-DD HH:MM)",
            detail={"key": "bad_date"},
        ) from None


@router.post("/{cohort_id}/assignments/{assignment_id}/regrade")
async def regrade_all(
    cohort_id: int, assignment_id: int, state: StateDep, principal: ViewerDep
) -> RedirectResponse:
    return await _act(state, cohort_id, principal, "regrade",
                      lambda s: teaching.regrade_all(_mine(s, cohort_id, assignment_id), s, principal, state))  # fmt: skip


@router.post("/{cohort_id}/submissions/{submission_id}/regrade")
async def regrade_one(
    cohort_id: int, submission_id: int, state: StateDep, principal: ViewerDep
) -> RedirectResponse:
    def work(session: Session) -> None:
        from ..models import Submission

        sub = get_row(session, Submission, submission_id, "submission")
        _mine(session, cohort_id, sub.assignment_id)
        teaching.regrade_one(submission_id, session, principal, state)

    return await _act(state, cohort_id, principal, "regrade", work)


@router.post("/{cohort_id}/assignments/{assignment_id}/deadline")
async def set_deadline(
    cohort_id: int,
    assignment_id: int,
    state: StateDep,
    principal: ViewerDep,
    due_at: str = Form(...),
) -> RedirectResponse:
    return await _act(state, cohort_id, principal, "deadline",
                      lambda s: teaching.set_deadline(_mine(s, cohort_id, assignment_id), _due(due_at), s, principal))  # fmt: skip


@router.post("/{cohort_id}/assignments/{assignment_id}/extension")
async def extend(
    cohort_id: int,
    assignment_id: int,
    state: StateDep,
    principal: ViewerDep,
    username: str = Form(...),
    due_at: str = Form(...),
) -> RedirectResponse:
    return await _act(state, cohort_id, principal, "extension",
                      lambda s: teaching.extend_for(_mine(s, cohort_id, assignment_id), username, _due(due_at), s, principal))  # fmt: skip


@router.post("/{cohort_id}/issue")
async def issue(cohort_id: int, state: StateDep, principal: ViewerDep) -> RedirectResponse:
    """Issue certificates to every eligible learner of the cohort (institution admins)."""

    body = cred_api.IssueIn(cohort_id=cohort_id)
    return await _act(state, cohort_id, principal, "issue", lambda s: None,
                      then=lambda s: cred_api.issue(body, s, principal, state))  # fmt: skip


def _mine(session: Session, cohort_id: int, assignment_id: int) -> int:
    """The assignment id when it belongs to this cohort (forms cannot mix cohorts)."""
    from ..models import Assignment

    a = get_row(session, Assignment, assignment_id, "assignment")
    if a.cohort_id != cohort_id:
        raise NotFound(f"no assignment {assignment_id} in cohort {cohort_id}")
    return assignment_id
