"""What every table shares: aware UTC timestamps (SQLModel's UTCDateTime) and one metadata.

All tables register on ``SQLModel.metadata``; Alembic's ``env.py`` imports :mod:`academy.models`
so a new area (e.g. credentials) only has to add its module there and write one migration.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import SQLModel

metadata = SQLModel.metadata


def utcnow() -> datetime:
    """Now, aware, in UTC: how every timestamp is stored and compared."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """Accept aware or naive (taken as UTC) datetimes from clients."""
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)
