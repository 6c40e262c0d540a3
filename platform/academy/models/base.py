"""What every table shares: aware UTC timestamps (SQLModel's UTCDateTime) and one metadata.

All tables register on ``SQLModel.metadata``; Alembic's ``env.py`` imports :mod:`academy.models`
so a new area (e.g. credentials) only has to add its module there and write one migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from sqlmodel import SQLModel

metadata = SQLModel.metadata


def utcnow() -> datetime:
    """Now, aware, in UTC: how every timestamp is stored and compared."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """Accept aware or naive (taken as UTC) datetimes from clients."""
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


class _Row(Protocol):
    @property
    def id(self) -> int | None: ...


def id_of(row: _Row) -> int:
    """The primary key of a row that is in the database.

    Every table types ``id`` as ``int | None`` because a new row has none until it is flushed; code
    that holds a stored row takes its key here, so a row that was never flushed fails loudly instead
    of writing or querying with NULL.
    """
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: flush it first")
    return row.id
