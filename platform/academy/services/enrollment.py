"""Enrollments, one at a time or from a CSV file: all rows apply or none, each row reported."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass

from sqlmodel import Session, col, select

from ..models import Cohort, Course, Enrollment, Institution, Role, User, id_of
from . import audit
from .access import Principal
from .errors import AcademyError, Conflict, Invalid
from .identity import USERNAME_RE, ensure_user, grant_role

CSV_COLUMNS = ("username", "display_name", "email")
MAX_ROWS = 20000
NOT_APPLIED = "valid, but nothing was applied: fix the rows marked error and upload again"


@dataclass
class RowReport:
    row: int
    username: str
    status: str  # enrolled | already_enrolled | error
    message: str = ""


def cohorts_named(
    session: Session, learner_id: int | None = None
) -> list[tuple[Cohort, Institution, Course]]:
    """Every cohort, or only those ``learner_id`` is enrolled in, with its institution and course
    in cohort id order: a list of cohorts always shows the three together."""
    query = (
        select(Cohort, Institution, Course)
        .join(Institution, col(Institution.id) == col(Cohort.institution_id))
        .join(Course, col(Course.id) == col(Cohort.course_id))
        .order_by(col(Cohort.id))
    )
    if learner_id is not None:
        query = query.join(Enrollment, col(Enrollment.cohort_id) == col(Cohort.id)).where(
            Enrollment.user_id == learner_id
        )
    return list(session.exec(query))


def learners(session: Session, cohort: Cohort) -> list[User]:
    """The learners enrolled in ``cohort``, by username: the gradebook, the dashboard and the
    enrollment list show the same people in the same order."""
    return list(
        session.exec(
            select(User)
            .join(Enrollment, col(Enrollment.user_id) == col(User.id))
            .where(Enrollment.cohort_id == cohort.id)
            .order_by(col(User.username))
        )
    )


def enrollment_of(session: Session, cohort: Cohort, user: User) -> Enrollment | None:
    """``user``'s enrollment in ``cohort``, if enrolled."""
    return session.exec(
        select(Enrollment).where(Enrollment.cohort_id == cohort.id, Enrollment.user_id == user.id)
    ).first()


def enroll(
    session: Session, actor: Principal | None, cohort: Cohort, user: User, *, strict: bool = True
) -> tuple[Enrollment, bool]:
    """Enroll ``user`` in ``cohort`` and give the learner role there; audited."""
    found = enrollment_of(session, cohort, user)
    if found is not None:
        if strict:
            raise Conflict(f"{user.username} is already enrolled in cohort {cohort.slug}")
        return found, False
    row = Enrollment(cohort_id=id_of(cohort), user_id=id_of(user))
    session.add(row)
    session.flush()
    inst = session.get(Institution, cohort.institution_id)
    grant_role(session, actor, user, Role.learner, inst, cohort.course_id)
    audit.record(
        session,
        actor,
        "enrollment.create",
        "enrollment",
        row.id,
        cohort.institution_id,
        user=user.username,
        cohort=cohort.slug,
    )
    return row, True


def unenroll(session: Session, actor: Principal, cohort: Cohort, enrollment: Enrollment) -> None:
    user = session.get(User, enrollment.user_id)
    audit.record(
        session,
        actor,
        "enrollment.delete",
        "enrollment",
        enrollment.id,
        cohort.institution_id,
        user=user.username if user else None,
        cohort=cohort.slug,
    )
    session.delete(enrollment)


def _parse_csv(text: str) -> tuple[list[dict[str, str]], list[RowReport]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "username" not in header:
        raise Invalid(
            "the CSV needs a header row with a 'username' column (optional: display_name, email)"
        )
    reader.fieldnames = header
    rows: list[dict[str, str]] = []
    errors: list[RowReport] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(reader, start=2):
        if index - 1 > MAX_ROWS:
            raise Invalid(f"the CSV has more than {MAX_ROWS} rows; split it")
        if None in raw:  # more fields than the header
            errors.append(RowReport(index, "", "error", "more fields than the header"))
            continue
        row = {k: (v or "").strip() for k, v in raw.items() if k}
        if not any(row.values()):
            continue
        username = row.get("username", "")
        if not USERNAME_RE.match(username):
            errors.append(
                RowReport(
                    index, username, "error", "username: use lower-case letters, digits, . _ @ -"
                )
            )
        elif username in seen:
            errors.append(RowReport(index, username, "error", f"duplicate of row {seen[username]}"))
        else:
            seen[username] = index
            row["_row"] = str(index)
            rows.append(row)
    return rows, errors


def enroll_csv(
    session: Session, actor: Principal, cohort: Cohort, text: str
) -> tuple[bool, list[RowReport]]:
    """Apply the CSV in the caller's transaction when every row is good; (applied, report).

    Running the same file twice changes nothing the second time (rows say ``already_enrolled``).
    """
    rows, errors = _parse_csv(text)
    if not rows and not errors:
        raise Invalid("the CSV has no rows under its header")
    report: list[RowReport] = list(errors)
    if errors:
        report += [RowReport(int(r["_row"]), r["username"], "ok", NOT_APPLIED) for r in rows]
        return False, sorted(report, key=lambda r: r.row)
    for row in rows:
        try:
            user, _created = ensure_user(
                session, row["username"], row.get("display_name", ""), row.get("email", "")
            )
            if user.is_service:
                raise Invalid("a service account cannot be enrolled")
            _enrollment, created = enroll(session, actor, cohort, user, strict=False)
        except AcademyError as exc:
            report.append(RowReport(int(row["_row"]), row["username"], "error", exc.message))
            continue
        report.append(
            RowReport(
                int(row["_row"]), row["username"], "enrolled" if created else "already_enrolled"
            )
        )
    ok = not any(r.status == "error" for r in report)
    return ok, sorted(report, key=lambda r: r.row)


def report_json(report: list[RowReport]) -> list[dict]:
    return [asdict(r) for r in report]
