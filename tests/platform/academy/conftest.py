"""Fixtures for the academy service tests: a real PostgreSQL database per test session (dropped
after) or a fresh SQLite file per test, the app on either, and a small world of users."""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from academy.app import create_app
from academy.db import make_engine, referenced, session_scope
from academy.models import (
    Cohort,
    CredentialRecord,
    Institution,
    LatePolicy,
    Role,
    User,
    id_of,
)
from academy.services.access import ALL_SCOPES, Principal
from academy.services.courses import import_course, release_lab
from academy.services.enrollment import enroll
from academy.services.identity import (
    create_institution,
    ensure_user,
    grant_role,
    issue_token,
    roles_of,
)
from academy.settings import Settings
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from labs.minichain.waiting import wait_until
from tests.platform.appserver import academy_state, free_port

from .builders import LAB, write_course

PG_ADMIN = os.environ.get("ACADEMY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BASE = "/services/academy/api"


_PG_DB: list[str] = []


def pg_url() -> str:
    """A database of our own on the real PostgreSQL server, made on first use and dropped when
    the test session ends (a plain function, not a session fixture: titanoboa's pytest plugin
    anchors its EVM around every fixture and cannot unwind one that outlives the tests)."""
    host = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    if not _PG_DB:
        name = f"platform_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        _PG_DB.append(name)
        atexit.register(_drop_pg)
    return f"{host}/{_PG_DB[0]}"


def _drop_pg() -> None:
    while _PG_DB:
        name = _PG_DB.pop()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _drop_pg()


def _reset_pg(url: str) -> None:
    """Empty every table (fast, keeps the migrated schema) so each test starts clean."""
    settings = Settings(database_url=url)
    engine = make_engine(settings)
    with engine.begin() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"
                )
            )
        ]
        if tables:
            conn.execute(
                text(
                    "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
                )
            )
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


#: the settings_for fixture: settings_for(backend="sqlite", **overrides) -> Settings
SettingsFor = Callable[..., Settings]


@pytest.fixture
def settings_for(tmp_path: Path, request: pytest.FixtureRequest) -> SettingsFor:
    """Build Settings on the chosen backend; state and courses under tmp_path."""

    def make(backend: str = "sqlite", **overrides: object) -> Settings:
        courses = tmp_path / "courses"
        if not (courses / "demo-hashing").exists():
            write_course(courses)
        values: dict = {
            "state_dir": tmp_path / "state",
            "courses_dir": courses,
            "grade_workers": 1,
            "grade_poll_seconds": 0.2,
            "grade_lease_seconds": 5.0,
            "grade_backoff_seconds": 0.2,
            "cell_timeout": 10.0,
        }
        if backend == "postgresql":
            url = pg_url()
            from academy.db import upgrade

            upgrade(Settings(database_url=url))
            _reset_pg(url)
            values["database_url"] = url
        values.update(overrides)
        return Settings(**values)

    return make


@dataclass
class World:
    """Two institutions, one course, a cohort at each, and one person in every role."""

    settings: Settings
    test_client: TestClient | None  # None when the app is served another way (ids, tokens only)
    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> TestClient:
        assert self.test_client is not None, "this world was built without a TestClient"
        return self.test_client

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who != "anonymous" else {}

    @property
    def engine(self) -> Engine:
        return academy_state(self.client).engine

    def issue_credential(
        self, cohort: str, username: str, lab: str, points: float
    ) -> CredentialRecord:
        """Certify ``username`` in the cohort ``ids[cohort]`` through the issuing service, full
        marks on ``lab``; the stored record (uid, document, share token)."""
        from academy.services import credentials as svc

        with session_scope(self.engine) as session:
            row = referenced(session, Cohort, self.ids[cohort])
            user = session.exec(select(User).where(User.username == username)).one()
            inst = referenced(session, Institution, row.institution_id)
            learners: list[tuple[Cohort, User, dict[str, tuple[float, float]]]] = [
                (row, user, {lab: (points, points)})
            ]
            svc.issue_batch(session, self.settings, inst, learners, None)
            record = session.exec(
                select(CredentialRecord)
                .where(CredentialRecord.user_id == id_of(user))
                .order_by(col(CredentialRecord.id).desc())
            ).first()
            assert record is not None, f"no credential was issued to {username}"
            session.refresh(record)
            session.expunge(record)
        return record

    def token(self, username: str, scopes: list[str]) -> str:
        with session_scope(self.engine) as session:
            user, _ = ensure_user(session, username)
            _row, secret = issue_token(session, user, scopes, "test")
        return secret


def build_world(
    settings: Settings, client: TestClient | None, engine: Engine | None = None
) -> World:
    """Create the two-institution world through the services (on ``engine`` or the app's).

    Without a client (the app served another way) the world only gives ids and tokens."""
    if engine is None:
        assert client is not None, "give the app's client or an engine"
        engine = academy_state(client).engine
    world = World(settings, client)
    with session_scope(engine) as session:
        a = create_institution(session, None, "uni-a", "University A")
        b = create_institution(session, None, "uni-b", "University B")
        course = import_course(session, settings.courses_dir / "demo-hashing")
        cohorts = {}
        for inst in (a, b):
            cohort = Cohort(
                institution_id=id_of(inst), course_id=id_of(course), slug="c1", name="cohort"
            )
            session.add(cohort)
            session.flush()
            cohorts[inst.slug] = cohort
        people = {
            "platform_admin": (Role.platform_admin, None),
            "admin_a": (Role.institution_admin, a),
            "instructor_a": (Role.instructor, a),
            "admin_b": (Role.institution_admin, b),
            "instructor_b": (Role.instructor, b),
        }
        users = {}
        for name, (role, where) in people.items():
            user, _ = ensure_user(session, name.replace("_", "-"))
            grant_role(session, None, user, role, where)
            users[name] = user
        for name, slug in (("learner_a", "uni-a"), ("learner_a2", "uni-a"), ("learner_b", "uni-b")):
            user, _ = ensure_user(session, name.replace("_", "-"))
            enroll(session, None, cohorts[slug], user)
            users[name] = user
        actor = Principal(
            users["instructor_a"], roles_of(session, id_of(users["instructor_a"])), ALL_SCOPES
        )
        for slug, cohort in cohorts.items():
            asg = release_lab(
                session,
                settings,
                actor,
                cohort,
                LAB,
                opens_at=None,
                due_at=None,
                late_policy=LatePolicy.accept,
                late_penalty_per_day=0.0,
            )
            world.ids[f"assignment_{slug[-1]}"] = id_of(asg)
            world.ids[f"cohort_{slug[-1]}"] = id_of(cohort)
        world.ids["course"] = id_of(course)
        for name, user in users.items():
            _row, secret = issue_token(session, user, sorted(ALL_SCOPES), "test")
            world.tokens[name] = secret
    return world


#: the world_on fixture: world_on(backend="sqlite", **settings) -> World
WorldOn = Callable[..., World]


@pytest.fixture
def world_on(settings_for: SettingsFor) -> Iterator[WorldOn]:
    """world_on(backend, **settings) -> World, with the app running (lifespan) until test end."""
    clients: list[TestClient] = []

    def make(backend: str = "sqlite", **overrides: object) -> World:
        settings = settings_for(backend, **overrides)
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return build_world(settings, client)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@dataclass
class Server:
    """``academy serve`` running as its own process (so it can be killed like a real one)."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self, sig: int = 15) -> None:
        import signal as _signal

        proc = self.proc
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(20)
            except Exception:
                os.killpg(proc.pid, _signal.SIGKILL)
                proc.wait(10)


def settings_env(settings: Settings) -> dict[str, str]:
    keys = (
        "state_dir",
        "courses_dir",
        "database_url",
        "grade_workers",
        "grade_lease_seconds",
        "grade_poll_seconds",
        "grade_backoff_seconds",
        "grade_max_attempts",
        "cell_timeout",
        "max_upload_bytes",
    )
    return {f"ACADEMY_{k.upper()}": str(getattr(settings, k)) for k in keys}


def start_server(settings: Settings, log: Path) -> Server:
    """Start academy in a new session (process group) on a free loopback port; wait until up."""
    import sys

    import httpx

    port = free_port()
    env = {**os.environ, **settings_env(settings)}
    fh = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "academy.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=fh,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/services/academy"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"academy exited early: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        return False

    try:
        wait_until(healthy, 90, interval=0.2)
    except TimeoutError:
        Server(proc, url, log).stop(9)
        raise AssertionError(f"academy did not start in 90 s: {log.read_text()[-2000:]}") from None
    return Server(proc, url, log)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers started by a test are killed (whole process group) when it ends."""
    started: list[Server] = []
    yield started
    for server in started:
        server.stop(9)
