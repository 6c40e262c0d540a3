"""Every change to grades, roles and enrollments, who made it and what it was before."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from .base import utcnow


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    token_id: int | None = Field(default=None, foreign_key="api_token.id")
    action: str = Field(max_length=64, index=True)
    entity: str = Field(max_length=64)
    entity_id: int | None = None
    institution_id: int | None = Field(default=None, foreign_key="institution.id", index=True)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
