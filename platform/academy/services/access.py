"""Who may do what: the principal behind a request and the rules every endpoint asks.

A principal is a user (person, institution system or the hub) with the roles held in academy's
tables, narrowed by the scopes of the token used.  Browser sessions (academy's own hub OAuth token)
carry every scope; a hub token sent as a Bearer token must have been granted access to academy
(``access:services!service=academy``) and carries ``learn`` only; academy API tokens carry the
scopes they were created with.

Scopes: ``learn`` (the learner API), ``read`` (cohorts, submissions, gradebook of what one
teaches or administers), ``teach`` (release, deadlines, regrade), ``enroll`` (enrollments),
``admin`` (institutions, users, roles, tokens, audit), ``hub`` (the hub's internal calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, select

from ..models import Cohort, Enrollment, Role, RoleAssignment, User
from .errors import Forbidden

SCOPES = ("learn", "read", "teach", "enroll", "admin", "hub")
ALL_SCOPES = frozenset(SCOPES) - {"hub"}


@dataclass
class Principal:
    user: User
    roles: list[RoleAssignment]
    scopes: frozenset[str]
    token_id: int | None = None
    via: str = "token"
    _enrolled: set[int] | None = field(default=None, repr=False)

    @property
    def user_id(self) -> int:
        assert self.user.id is not None
        return self.user.id

    def require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this token lacks the {scope!r} scope; create one that has it")

    @property
    def is_platform_admin(self) -> bool:
        return any(r.role == Role.platform_admin for r in self.roles)

    def admin_of(self, institution_id: int) -> bool:
        return self.is_platform_admin or any(
            r.role == Role.institution_admin and r.institution_id == institution_id
            for r in self.roles
        )

    def teaches(self, cohort: Cohort) -> bool:
        """Platform admin, admin of the cohort's institution, or its instructor (course-scoped)."""
        return self.admin_of(cohort.institution_id) or any(
            r.role == Role.instructor
            and r.institution_id == cohort.institution_id
            and r.course_id in (None, cohort.course_id)
            for r in self.roles
        )

    def institutions(self) -> set[int]:
        """Institutions where this principal holds any staff role."""
        return {
            r.institution_id
            for r in self.roles
            if r.institution_id is not None and r.role != Role.learner
        }

    def enrolled_cohorts(self, session: Session) -> set[int]:
        if self._enrolled is None:
            rows = session.exec(
                select(Enrollment.cohort_id).where(Enrollment.user_id == self.user_id)
            ).all()
            self._enrolled = set(rows)
        return self._enrolled


def roles_of(session: Session, user_id: int) -> list[RoleAssignment]:
    return list(session.exec(select(RoleAssignment).where(RoleAssignment.user_id == user_id)))


def require_teacher(principal: Principal, cohort: Cohort, scope: str = "teach") -> None:
    principal.require_scope(scope)
    if not principal.teaches(cohort):
        raise Forbidden("you do not teach or administer this cohort")


def require_admin_of(principal: Principal, institution_id: int, scope: str = "admin") -> None:
    principal.require_scope(scope)
    if not principal.admin_of(institution_id):
        raise Forbidden("you do not administer this institution")


def require_platform_admin(principal: Principal) -> None:
    principal.require_scope("admin")
    if not principal.is_platform_admin:
        raise Forbidden("only a platform admin may do this")
