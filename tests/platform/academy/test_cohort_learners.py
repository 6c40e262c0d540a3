"""The learners of a cohort: one query behind the enrollment list, the gradebook and the dashboard."""

from __future__ import annotations

from academy.db import make_engine, session_scope, upgrade
from academy.models import Cohort, User
from academy.services import gradebook, progress
from academy.services.enrollment import enroll, enrollment_of, learners
from academy.services.identity import ensure_user
from sqlmodel import select

from .conftest import BASE, build_world


def test_the_learners_of_a_cohort_are_its_enrolled_users_by_name(settings_for) -> None:
    settings = settings_for("sqlite", grade_workers=0)
    upgrade(settings)
    engine = make_engine(settings)
    world = build_world(settings, None, engine)
    with session_scope(engine) as session:
        cohort_a = session.get(Cohort, world.ids["cohort_a"])
        cohort_b = session.get(Cohort, world.ids["cohort_b"])
        assert cohort_a is not None and cohort_b is not None
        late, _ = ensure_user(session, "aaron-late")  # sorts first, enrolled last
        enroll(session, None, cohort_a, late)
        names = [u.username for u in learners(session, cohort_a)]
        assert names == ["aaron-late", "learner-a", "learner-a2"]
        assert [u.username for u in learners(session, cohort_b)] == ["learner-b"]
        # the gradebook (one row per learner and assignment) and the dashboard list the same
        assert [r["student_id"] for r in gradebook.rows(session, cohort_a)] == names
        assert [u.username for u in progress.cohort_progress(session, cohort_a).learners] == names
        learner_b = session.exec(select(User).where(User.username == "learner-b")).one()
        assert enrollment_of(session, cohort_a, late) is not None
        assert enrollment_of(session, cohort_a, learner_b) is None


def test_the_enrollment_list_shows_the_cohorts_learners(world_on) -> None:
    world = world_on("sqlite")
    listed = world.client.get(
        f"{BASE}/cohorts/{world.ids['cohort_a']}/enrollments", headers=world.headers("instructor_a")
    )
    assert listed.status_code == 200
    assert [e["username"] for e in listed.json()] == ["learner-a", "learner-a2"]
