"""Database engine, sessions and migrations.

SQLite (the embedded default) gets WAL and a busy timeout so the service and a separate
``academy worker`` can share one file; PostgreSQL is used as is.  The schema is only ever changed
by Alembic migrations (``academy db upgrade``, also run when the app starts).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

from .settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"

Row = TypeVar("Row")


def _sqlite_folder(settings: Settings) -> None:
    path = settings.database_url.split("///", 1)[-1]
    if settings.is_sqlite and path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def make_engine(settings: Settings) -> Engine:
    """An engine for ``settings.database_url`` (creating the SQLite folder when needed)."""
    url = settings.database_url
    if settings.is_sqlite:
        _sqlite_folder(settings)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def alembic_config(settings: Settings) -> Config:
    """Alembic's Config built in code (no alembic.ini to keep in sync)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (idempotent)."""
    from alembic import command

    _sqlite_folder(settings)
    command.upgrade(alembic_config(settings), revision)


def referenced(session: Session, model: type[Row], key: int) -> Row:
    """A row that must exist (a foreign key points at it, or it was just read): a miss is a bug."""
    row = session.get(model, key)
    if row is None:
        raise LookupError(f"{model.__name__} {key} is referenced but missing")
    return row


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
