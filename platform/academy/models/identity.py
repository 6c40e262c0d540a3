"""Who is who: institutions, users, their roles, and the API tokens that act for them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from .base import utcnow


class Role(StrEnum):
    platform_admin = "platform_admin"
    institution_admin = "institution_admin"
    instructor = "instructor"
    learner = "learner"


class Institution(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    """A person (or, with ``is_service``, an institution system or the hub itself)."""

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=128)
    display_name: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=254)
    password_hash: str | None = Field(default=None, max_length=300)
    is_service: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    language: str | None = Field(default=None, max_length=16)
    """The language the person chose for pages, notebooks and grader messages (``en`` or
    ``zh-CN``); None follows the browser's Accept-Language."""


class RoleAssignment(SQLModel, table=True):
    """A role held within a scope: platform-wide (no institution), an institution, or a course there."""

    __tablename__ = "role_assignment"
    __table_args__ = (UniqueConstraint("user_id", "role", "institution_id", "course_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    role: Role = Field(max_length=32)
    institution_id: int | None = Field(default=None, foreign_key="institution.id", index=True)
    course_id: int | None = Field(default=None, foreign_key="course.id")
    created_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    """A bearer token: only its SHA-256 is stored; it acts for ``user_id`` within ``scopes``."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(default="", max_length=200)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    prefix: str = Field(max_length=16)
    scopes: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
