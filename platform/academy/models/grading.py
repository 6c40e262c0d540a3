"""What was handed in and what it scored: submissions, the durable job queue, grades."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from .base import utcnow


class Submission(SQLModel, table=True):
    """One upload; its bytes live content-addressed under STATE_DIR/submissions (never overwritten)."""

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(foreign_key="assignment.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    sha256: str = Field(max_length=64, index=True)
    size: int
    filename: str = Field(max_length=255)
    submitted_at: datetime = Field(default_factory=utcnow)
    late_seconds: float = 0.0
    accepted: bool = Field(default=True, description="false: late under a reject policy")


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class GradeJob(SQLModel, table=True):
    """Grade one submission; claimed with a lease so a crashed worker's job is taken over."""

    __tablename__ = "grade_job"
    __table_args__ = (Index("ix_grade_job_claim", "status", "run_after"),)

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    status: JobStatus = Field(default=JobStatus.queued, max_length=16)
    reason: str = Field(default="submitted", max_length=32)
    attempts: int = 0
    run_after: datetime = Field(default_factory=utcnow)
    claim_token: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class Grade(SQLModel, table=True):
    """The outcome of exactly one job (``job_id`` is unique): scores, per-cell results, feedback."""

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="grade_job.id", unique=True)
    submission_id: int = Field(foreign_key="submission.id", index=True)
    raw_score: float
    late_penalty: float = 0.0
    score: float
    max_score: float
    cells: str = Field(sa_column=Column(Text, nullable=False), description="JSON per-cell results")
    feedback_html: str = Field(sa_column=Column(Text, nullable=False))
    graded_at: datetime = Field(default_factory=utcnow)
