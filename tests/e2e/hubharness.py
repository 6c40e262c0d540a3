"""A real platform on free loopback ports for end-to-end tests: JupyterHub with its
configurable-http-proxy, academy as its managed service on a PostgreSQL database of its own, the
demo institution and a tiny course, and helpers that act as a learner through the hub.

Reuse it from any test module (one hub per module, ~10-20 s to start)::

    from tests.e2e.hubharness import platform_hub, HubBrowser  # noqa: F401  (pytest fixture)

    def test_something(platform_hub):
        learner = HubBrowser(platform_hub)
        learner.login("learner1", "learner1-demo")
        learner.academy("GET", "/api/me")
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy, request_host
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from academy.hub.launcher import HubRun, start_hub
from academy.hub.origins import LoopbackNames, learner_origin

from labs.minichain.ports import free_port
from labs.minichain.waiting import wait_until

PG_ADMIN = os.environ.get("ACADEMY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


class PgDatabase:
    """A database of our own on the real PostgreSQL server (prefix ``hub_``), dropped after."""

    def __init__(self) -> None:
        self.name = f"hub_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        host = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        self.url = f"{host}/{self.name}"

    def __enter__(self) -> PgDatabase:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc: object) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def hub_settings(state_dir: Path, courses_dir: Path, database_url: str = "", **extra: Any) -> Any:
    """Settings for a hub of its own: every port free, nothing shared with ``make up``."""
    from academy.settings import Settings

    values: dict[str, Any] = {
        "state_dir": state_dir,
        "courses_dir": courses_dir,
        "database_url": database_url,
        "seed_demo": True,
        "hub_port": free_port(),
        "hub_api_port": free_port(),
        "hub_proxy_api_port": free_port(),
        "port": free_port(),
        "grade_workers": 2,
        "grade_poll_seconds": 0.2,
        "cell_timeout": 20.0,
        "hub_chain_rpc_urls": "",
        "hub_lab": None,
    }
    values.update(extra)
    return Settings(**values)


@pytest.fixture(scope="module")
def platform_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubRun]:
    """The whole platform, once per test module, on PostgreSQL; stopped and dropped after."""
    from tests.platform.academy.builders import write_course

    root = tmp_path_factory.mktemp("platform")
    courses = root / "courses"
    write_course(courses)
    with PgDatabase() as db:
        run = start_hub(hub_settings(root / "state", courses, db.url, hub_lab=chain_lab(root)))
        try:
            yield run
        finally:
            run.stop()


def chain_lab(folder: Path) -> Path:
    """A lab spec asking for a one-validator chain: what each learner gets at spawn."""
    lab = folder / "chain-lab" / "lab.toml"
    lab.parent.mkdir(parents=True, exist_ok=True)
    lab.write_text('[lab]\nid = "chain-lab"\n\n[chain]\nvalidators = 1\nconsensus = "solo"\n')
    return lab


class _BasePath(Protocol):
    @property
    def base_path(self) -> str: ...


class HubEndpoint(Protocol):
    """What a browser needs of a running hub: a HubRun, or a hub that ``academy up`` started."""

    @property
    def url(self) -> str: ...

    @property
    def settings(self) -> _BasePath: ...

    def log_tail(self) -> str: ...


class LoopbackCookies(DefaultCookiePolicy):
    """Cookies kept as Chromium keeps them for ``localhost``.

    The hub sets its session id for the domain of ``subdomain_host`` (``Domain=localhost``).
    ``localhost`` being a top-level name, Chromium keeps such a cookie for ``localhost`` alone,
    and refuses it from a subdomain; Python's cookie jar stores it but never sends it back to
    ``localhost``, and the hub's XSRF check, which is tied to the session id, then fails.
    """

    def set_ok(self, cookie: Cookie, request: Any) -> bool:
        if cookie.domain == ".localhost":
            if request_host(request) != "localhost":
                return False
            cookie.domain, cookie.domain_specified, cookie.domain_initial_dot = (
                "localhost.local",  # how the jar names a cookie of the host localhost
                False,
                False,
            )
        return super().set_ok(cookie, request)


def browser_client(base_url: str, timeout: float) -> httpx.Client:
    """An httpx client that finds learners' servers (``*.localhost``) and keeps cookies the way a
    browser does."""
    return httpx.Client(
        base_url=base_url,
        follow_redirects=True,
        timeout=timeout,
        transport=LoopbackNames(),
        cookies=CookieJar(policy=LoopbackCookies()),
    )


class HubBrowser:
    """One user acting through the hub the way a browser does: the real login form, cookies,
    OAuth redirects to academy and to the user's own server (on its own origin, a subdomain of
    ``localhost`` that :class:`LoopbackNames` resolves as browsers do), XSRF headers."""

    def __init__(self, run: HubEndpoint, timeout: float = 30.0) -> None:
        self.run = run
        self.http = browser_client(run.url, timeout)
        self.name = ""

    def close(self) -> None:
        self.http.close()

    def login(self, username: str, password: str, next_url: str = "") -> httpx.Response:
        """Fill in and post the hub's login form; returns the page it lands on."""
        form = self.http.get("/hub/login")
        form.raise_for_status()
        xsrf = _xsrf_field(form.text)
        url = "/hub/login" + (f"?next={next_url}" if next_url else "")
        reply = self.http.post(
            url, data={"username": username, "password": password, "_xsrf": xsrf}
        )
        self.name = username
        return reply

    def spawn(self, timeout: float = 180.0) -> httpx.Response:
        """Start my server (as the hub's Start button does); return its JupyterLab page."""
        self.http.get(f"/hub/spawn/{self.name}", timeout=timeout)
        lab = f"/user/{self.name}/lab"

        def lab_page() -> httpx.Response | None:
            # the page (not the API) walks the OAuth redirects that give us the server's cookie
            reply = self.http.get(lab)
            return reply if reply.status_code == 200 and reply.url.path.startswith(lab) else None

        return wait_until(
            lab_page,
            timeout,
            interval=0.5,
            message=lambda: f"{self.name}'s server did not start; hub log:\n{self.run.log_tail()}",
        )

    def server(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Call my own Jupyter server (``/user/<me>/...``) with its XSRF token, as JupyterLab does."""
        prefix = f"/user/{self.name}/"
        origin = learner_origin(self.run.url, self.name)
        xsrf = next(
            (
                c.value
                for c in self.http.cookies.jar
                if c.name == "_xsrf" and c.path.startswith(prefix.rstrip("/"))
            ),
            None,
        )
        headers = {"X-XSRFToken": xsrf} if xsrf else {}
        return self.http.request(method, origin + prefix + path.lstrip("/"), headers=headers, **kw)

    def academy(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Call academy with the browser's session (HubOAuth cookie)."""
        return self.http.request(method, self.run.settings.base_path + path, **kw)


def _xsrf_field(html: str) -> str:
    found = re.search(r'name="_xsrf"\s+value="([^"]+)"', html)
    return found.group(1) if found else ""
