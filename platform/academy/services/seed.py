"""The demo the embedded platform starts with: one institution, an instructor, learners with demo
passwords, every course found under ``courses/`` imported with a demo cohort, and every lab
released to it.  Idempotent: running it again changes nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import select

from ..db import session_scope
from ..models import Assignment, Cohort, Institution, LatePolicy, Role, id_of
from ..settings import Settings
from .access import ALL_SCOPES, Principal
from .courses import course_labs, discover, import_course, release_lab
from .enrollment import enroll
from .identity import create_institution, ensure_user, grant_role, roles_of, set_password

log = logging.getLogger("academy.seed")

DEMO_INSTITUTION = ("demo-university", "Demo University")
DEMO_ADMIN = ("admin", "Platform Admin", "admin-demo")
DEMO_INSTRUCTOR = ("instructor", "Demo Instructor", "instructor-demo")
DEMO_LEARNERS = [(f"learner{i}", f"Demo Learner {i}", f"learner{i}-demo") for i in (1, 2, 3)]


@dataclass
class SeedReport:
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (user, password, role)
    courses: list[str] = field(default_factory=list)
    assignments: list[int] = field(default_factory=list)


def seed_demo(settings: Settings, engine: Engine, learners: int = 3) -> SeedReport:
    report = SeedReport()
    with session_scope(engine) as session:
        inst = session.exec(
            select(Institution).where(Institution.slug == DEMO_INSTITUTION[0])
        ).first()
        if inst is None:
            inst = create_institution(session, None, *DEMO_INSTITUTION)
        people = [(DEMO_ADMIN, Role.platform_admin), (DEMO_INSTRUCTOR, Role.instructor)]
        people += [
            ((f"learner{i}", f"Demo Learner {i}", f"learner{i}-demo"), Role.learner)
            for i in range(1, learners + 1)
        ]
        users = {}
        for (name, display, password), role in people:
            user, created = ensure_user(session, name, display)
            if created or not user.password_hash:
                set_password(session, user, password)
            users[name] = user
            report.logins.append((name, password, role.value))
            if role == Role.platform_admin:
                grant_role(session, None, user, role, None)
            elif role == Role.instructor:
                grant_role(session, None, user, role, inst)
        actor = Principal(
            user=users["instructor"],
            roles=roles_of(session, id_of(users["instructor"])),
            scopes=ALL_SCOPES,
        )
        for root in discover(settings.courses_dir):
            try:
                course = import_course(session, root)
            except Exception as exc:  # one broken course folder must not stop the demo
                log.warning("skipping course %s: %s", root, exc)
                continue
            report.courses.append(course.slug)
            cohort = session.exec(
                select(Cohort).where(
                    Cohort.institution_id == inst.id, Cohort.course_id == course.id
                )
            ).first()
            if cohort is None:
                cohort = Cohort(
                    institution_id=id_of(inst),
                    course_id=id_of(course),
                    slug=f"{course.slug}-demo"[:64],
                    name=f"{course.title} (demo)",
                )
                session.add(cohort)
                session.flush()
            for name, user in users.items():
                if name.startswith("learner"):
                    enroll(session, None, cohort, user, strict=False)
            for lab in course_labs(course):
                existing = session.exec(
                    select(Assignment).where(
                        Assignment.cohort_id == cohort.id, Assignment.lab == lab["id"]
                    )
                ).first()
                if existing is None:
                    try:
                        existing = release_lab(
                            session,
                            settings,
                            actor,
                            cohort,
                            lab["id"],
                            opens_at=None,
                            due_at=None,
                            late_policy=LatePolicy.accept,
                            late_penalty_per_day=0.0,
                        )
                    except Exception as exc:
                        log.warning("could not release %s/%s: %s", course.slug, lab["id"], exc)
                        continue
                report.assignments.append(id_of(existing))
    return report
