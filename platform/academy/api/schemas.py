"""Request and response bodies of the REST API (what OpenAPI documents)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..models import LatePolicy, Role


class ErrorOut(BaseModel):
    detail: str = Field(description="one line saying what went wrong and what to do")


def error_bodies(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for ``statuses``: every error answers with the same ErrorOut body."""
    return {status: {"model": ErrorOut} for status in statuses}


class RoleOut(BaseModel):
    id: int
    role: Role
    institution: str | None
    course: str | None


class EnrollmentOut(BaseModel):
    cohort_id: int
    cohort: str
    institution: str
    course: str


class UserOut(BaseModel):
    username: str
    display_name: str
    email: str = ""


class MeOut(UserOut):
    roles: list[RoleOut]
    enrollments: list[EnrollmentOut]
    scopes: list[str]
    language: str | None = None
    """The language chosen (``en``, ``zh-CN``), or None: the browser's is followed."""


class LanguageIn(BaseModel):
    language: str | None = Field(
        description="en or zh-CN; null to follow the browser's Accept-Language"
    )


class LanguageOut(BaseModel):
    language: str | None
    """The stored choice."""
    effective: str
    """The language pages and notebooks are given in now."""


class LabEnvOut(BaseModel):
    """A learner's chain for one lab (``status`` ``none``: the lab needs no chain)."""

    course: str
    lab: str
    title: str = ""
    status: Literal["running", "starting", "stopped", "missing", "failed", "none"]
    consensus: str | None = None
    validators: int = Field(0, description="validators the lab's chain runs (0: no chain)")
    faults: list[str] = Field(default_factory=list, description="fault switches the lab uses")
    env_id: str | None = None
    rpc_url: str | None = None
    rpc_urls: list[str] = Field(default_factory=list, description="one per validator")
    explorer_url: str | None = None
    accounts: list[dict[str, str]] = Field(
        default_factory=list,
        description="funded keys of this throwaway chain: address, private_key",
    )
    contracts: dict[str, Any] = Field(
        default_factory=dict, description="preloaded contracts by name: address, abi"
    )
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="ACADEMY_RPC_URL, ACADEMY_RPC_URLS, ACADEMY_PRIVATE_KEYS, ... as labs.client "
        "reads them",
    )


class AssignmentOut(BaseModel):
    id: int
    cohort_id: int
    course: str
    lab: str
    name: str
    notebook: str
    opens_at: datetime
    due_at: datetime | None = Field(description="the cohort's due date")
    my_due_at: datetime | None = Field(None, description="yours, with any extension")
    late_policy: LatePolicy
    late_penalty_per_day: float
    max_score: float


class ReleaseFile(BaseModel):
    path: str
    size: int
    content_base64: str


class ReleaseOut(BaseModel):
    assignment_id: int
    lab: str
    language: str = "en"
    """The language of the notebooks and READMEs in ``files``."""
    files: list[ReleaseFile]


class SubmissionOut(BaseModel):
    id: int
    assignment_id: int
    username: str
    filename: str
    sha256: str
    size: int
    submitted_at: datetime
    late: bool
    late_seconds: float
    status: Literal["queued", "running", "graded", "failed", "rejected"]
    score: float | None = None
    raw_score: float | None = None
    late_penalty: float | None = None
    max_score: float | None = None
    cells: dict[str, Any] | None = Field(
        None, description="per-cell results (hidden tests' code never shown)"
    )
    error: str | None = None
    graded_at: datetime | None = None


class InstitutionIn(BaseModel):
    slug: str = Field(min_length=1, max_length=64)
    name: str = Field("", max_length=200)


class InstitutionOut(BaseModel):
    id: int
    slug: str
    name: str


class CourseOut(BaseModel):
    id: int
    slug: str
    title: str
    title_zh: str
    summary: str
    level: str
    labs: list[dict[str, Any]]


class CourseImportIn(BaseModel):
    course: str = Field(min_length=1, max_length=100, description="folder name under courses/")


class CohortIn(BaseModel):
    institution: str = Field(min_length=1, max_length=64, description="institution slug")
    course: str = Field(min_length=1, max_length=100, description="course slug")
    slug: str = Field(min_length=1, max_length=64)
    name: str = Field("", max_length=200)


class CohortOut(BaseModel):
    id: int
    slug: str
    name: str
    institution: str
    course: str


class EnrollIn(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    display_name: str = Field("", max_length=200)
    email: str = Field("", max_length=254)


class EnrollOut(BaseModel):
    cohort_id: int
    username: str
    display_name: str


class CsvRowOut(BaseModel):
    row: int
    username: str
    status: Literal["enrolled", "already_enrolled", "error", "ok"]
    message: str


class CsvReportOut(BaseModel):
    applied: bool
    enrolled: int
    already_enrolled: int
    errors: int
    rows: list[CsvRowOut]


class ReleaseIn(BaseModel):
    lab: str = Field(min_length=1, max_length=100)
    opens_at: datetime | None = None
    due_at: datetime | None = None
    late_policy: LatePolicy = LatePolicy.accept
    late_penalty_per_day: float = Field(0.0, ge=0.0, le=1.0)


class DeadlineIn(BaseModel):
    due_at: datetime


class ExtensionOut(BaseModel):
    assignment_id: int
    username: str
    due_at: datetime


class RegradeOut(BaseModel):
    queued: int


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    display_name: str = Field("", max_length=200)
    email: str = Field("", max_length=254)
    password: str | None = Field(None, min_length=4, max_length=200)


class RoleIn(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    role: Role
    institution: str | None = Field(None, max_length=64)
    course: str | None = Field(None, max_length=100)


class TokenIn(BaseModel):
    name: str = Field("", max_length=200)
    scopes: list[str] | None = None
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    username: str
    created_at: datetime
    expires_at: datetime | None
    token: str | None = Field(None, description="the secret: shown once, at creation")


class SystemIn(BaseModel):
    name: str = Field(min_length=1, max_length=40, description="short name, e.g. 'sis'")
    scopes: list[str] | None = None


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str | None
    action: str
    entity: str
    entity_id: int | None
    detail: dict[str, Any]


class PasswordCheckIn(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(max_length=1000)


class PasswordCheckOut(BaseModel):
    name: str
    admin: bool


class LearnerTokenOut(BaseModel):
    username: str
    token: str
    scopes: list[str]
    language: str | None = None
    """The learner's chosen language (``en``, ``zh-CN``), for their JupyterLab; None: not chosen."""
