"""What is taught: courses imported from the repository, cohorts, enrollments, assignments."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from .base import utcnow


class Course(SQLModel, table=True):
    """A course of the catalog, imported from ``courses/<slug>/course.toml``."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=100)
    title: str = Field(max_length=300)
    title_zh: str = Field(default="", max_length=300)
    summary: str = Field(default="")
    level: str = Field(default="", max_length=200)
    labs: str = Field(default="[]", description="JSON list of {id, title, title_zh}")
    completion: str = Field(default="{}", description="JSON of the [completion] table")
    source_dir: str = Field(default="", max_length=1000)
    imported_at: datetime = Field(default_factory=utcnow)


class Cohort(SQLModel, table=True):
    """A group of learners of one institution taking one course together."""

    __table_args__ = (UniqueConstraint("institution_id", "slug"),)

    id: int | None = Field(default=None, primary_key=True)
    institution_id: int = Field(foreign_key="institution.id", index=True)
    course_id: int = Field(foreign_key="course.id", index=True)
    slug: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class Enrollment(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("cohort_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(foreign_key="cohort.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class LatePolicy(StrEnum):
    accept = "accept"  # graded in full, marked late
    penalty = "penalty"  # score reduced by late_penalty_per_day for each started day
    reject = "reject"  # kept but not graded


class Assignment(SQLModel, table=True):
    """One lab of a course released to one cohort; its notebooks are snapshotted at release."""

    __table_args__ = (UniqueConstraint("cohort_id", "lab"),)

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(foreign_key="cohort.id", index=True)
    course_id: int = Field(foreign_key="course.id", index=True)
    lab: str = Field(max_length=100)
    title: str = Field(default="", max_length=300)
    notebook: str = Field(max_length=200, description="file name of the graded notebook")
    opens_at: datetime = Field(default_factory=utcnow)
    due_at: datetime | None = None
    late_policy: LatePolicy = Field(default=LatePolicy.accept, max_length=16)
    late_penalty_per_day: float = 0.0
    max_score: float = 0.0
    released_at: datetime = Field(default_factory=utcnow)
    released_by: int | None = Field(default=None, foreign_key="user.id")


class Extension(SQLModel, table=True):
    """A later due date for one learner on one assignment."""

    __table_args__ = (UniqueConstraint("assignment_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    due_at: datetime
    created_at: datetime = Field(default_factory=utcnow)
