"""``academy serve | worker | db upgrade | seed``: run and maintain the academy service.

Every setting is an environment variable with the prefix ``ACADEMY_`` (``academy serve --help``
lists them); options given here win over the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import typer

from .settings import Settings


def _settings_help() -> str:
    lines = ["Settings (environment variables):\n"]
    for name, field in Settings.model_fields.items():
        default = field.default if field.default not in ("", None) else "(empty)"
        lines.append(f"ACADEMY_{name.upper()} (default {default}): {field.description or ''}\n")
    return "\n".join(lines)


db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _load(**overrides: object) -> Settings:
    # keyword arguments, not model_validate: only Settings() also reads the ACADEMY_* environment
    given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except Exception as exc:
        raise _fail(f"bad setting: {str(exc).splitlines()[0]}") from None


def serve(
    host: Annotated[str | None, typer.Option(help="bind address (ACADEMY_HOST)")] = None,
    port: Annotated[
        int | None, typer.Option(help="port (ACADEMY_PORT; 0 picks a free one)")
    ] = None,
    seed: Annotated[bool, typer.Option("--seed", help="create the demo data first")] = False,
    workers: Annotated[
        int | None, typer.Option(help="grading threads (ACADEMY_GRADE_WORKERS)")
    ] = None,
) -> None:
    """Run the academy web service (API, OpenAPI, grading workers) with uvicorn."""
    import uvicorn

    from .app import create_app

    service_url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    if service_url and host is None and port is None and "ACADEMY_PORT" not in os.environ:
        parsed = urlparse(service_url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    settings = _load(host=host, port=port, seed_demo=True if seed else None, grade_workers=workers)
    app = create_app(settings)
    typer.echo(
        f"academy on http://{settings.host}:{settings.port}{settings.base_path}/ (database {settings.database_url.split('@')[-1]})"
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )


serve.__doc__ = (serve.__doc__ or "") + "\n\n" + _settings_help()


def worker(
    threads: Annotated[int, typer.Option(help="grading threads in this process")] = 2,
    once: Annotated[bool, typer.Option(help="grade what is queued now, then exit")] = False,
) -> None:
    """Grade queued submissions (any number of workers may run beside the service)."""
    import signal
    import threading

    from .db import make_engine, upgrade
    from .services.grading import WorkerPool, run_one

    settings = _load()
    upgrade(settings)
    engine = make_engine(settings)
    if once:
        n = 0
        while run_one(engine, settings):
            n += 1
        typer.echo(f"graded {n} job(s)")
        return
    pool = WorkerPool(engine, settings, threads)
    pool.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    typer.echo(f"grading with {threads} thread(s); Ctrl-C stops")
    done.wait()
    pool.stop()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply the migrations up to REVISION (default: the newest)."""
    from .db import upgrade

    settings = _load()
    upgrade(settings, revision)
    typer.echo(f"database at {revision}: {settings.database_url.split('@')[-1]}")


def seed(
    courses: Annotated[
        Path | None, typer.Option(help="courses folder (ACADEMY_COURSES_DIR)")
    ] = None,
) -> None:
    """Create the demo institution, users (with demo passwords) and courses; print the logins."""
    from .db import make_engine, upgrade
    from .services.seed import seed_demo

    settings = _load(courses_dir=courses)
    upgrade(settings)
    report = seed_demo(settings, make_engine(settings))
    for user, password, role in report.logins:
        typer.echo(f"{role:18} {user:12} password: {password}")
    typer.echo(
        f"courses: {', '.join(report.courses) or '(none found in ' + str(settings.courses_dir) + ')'}"
    )


def register(app: typer.Typer) -> None:
    """Add the service commands to the ``academy`` command line."""
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.command("seed")(seed)
    app.add_typer(db_app, name="db")
