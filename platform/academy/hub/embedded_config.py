"""JupyterHub configuration of the embedded platform (``jupyterhub -f embedded_config.py``).

One machine, nothing else installed: the hub and its configurable-http-proxy on
``http://localhost:HUB_PORT`` (on HUB_IP), learners' JupyterLab as local processes (one folder each
under ``STATE_DIR/hub/users``), each served from ``http://NAME.localhost:HUB_PORT``, an origin of
its own (:mod:`academy.hub.origins`), academy as a hub-managed service at ``/services/academy/`` that grades in
its own local pool. Every value comes from :class:`academy.settings.Settings` (``ACADEMY_*`` env
vars), which ``academy up`` and the tests set. The production configuration is in ``deploy/``.

Nothing the hub starts outlives it: the proxy and academy get SIGTERM from the kernel when the hub
dies (:mod:`labs.minichain.lifetime`), however it dies; learners' servers and their chains are
stopped by the hub when it stops (SIGTERM or SIGINT), and the warm parent watches the hub's pid.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from traitlets.config import Config

    from academy.settings import Settings

    def get_config() -> Config: ...  # JupyterHub puts it in a config file's namespace


from labs.minichain.lifetime import following

#: the repository root: configurable-http-proxy is installed into its node_modules by bootstrap
ROOT = Path(__file__).resolve().parents[3]
PROXY = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
#: chains kept started for the next learners (one host, a few logins at a time); each idle one
#: costs about 90 MiB and 2-3 % of a core (docs/scaling.md)
POOL_SIZE = 2


def academy_internal_url(settings: Settings) -> str:
    """academy as the hub reaches it directly (no proxy hop), base path included."""
    return f"http://127.0.0.1:{settings.port}{settings.base_path}"


def public_url(settings: Settings) -> str:
    """The hub as browsers reach it: by its host name, below which each learner's server has its
    own (academy.hub.origins)."""
    from academy.hub.origins import hub_domain

    return f"http://{hub_domain(settings)}:{settings.hub_port}"


def fast_sqlite(db_file: Path) -> None:
    """WAL, no fsync per commit and a busy timeout for the hub's own SQLite database.

    The hub commits several times per login and per OAuth exchange, on its one event loop thread;
    with SQLite's defaults each commit waits for an fsync, which under load was the largest share
    of the hub's time (logins queued behind it). WAL with ``synchronous=NORMAL`` keeps every
    commit atomic and durable against a crash of the hub (only a power cut may lose the last
    commits: sessions and tokens a user gets again by logging in).
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = str(db_file)

    @event.listens_for(Engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:  # only the hub's engine lives here
        if type(dbapi_conn).__module__ != "sqlite3":
            return
        cur = dbapi_conn.cursor()
        try:
            if not any(row[2] == target for row in cur.execute("PRAGMA database_list")):
                return
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
        finally:
            cur.close()


def fast_service_tokens(c: Config) -> None:
    """Hash the service's token and OAuth client secret once, as the hub does its own tokens.

    Tokens the hub did not generate itself are stretched by 16,384 rounds of SHA-512 in Python
    on every use (~12 ms of the hub's only thread, 100+ ms on a busy host), in case they are
    weak passwords. academy's token is 32 random bytes (``launcher.with_secrets``) and it is
    used twice in every academy sign-in (the OAuth code exchange authenticates the client by
    its header and by its secret), so the stretching bought nothing but a queue at login.
    """
    from functools import partial

    import jupyterhub.oauth.provider as provider
    from jupyterhub.utils import hash_token

    c.JupyterHub.trust_user_provided_tokens = True
    # OAuth client secrets (academy's token; single-user servers' generated tokens)
    provider.hash_token = partial(hash_token, rounds=1)


def configure(c: Config, settings: Settings | None = None) -> None:
    """Fill the traitlets config ``c`` from the academy settings."""
    from academy.hub.authenticator import AcademyAuthenticator
    from academy.hub.jail import why_unavailable
    from academy.hub.labchains import sandbox_chains, shared_chain
    from academy.hub.origins import subdomain_hook
    from academy.hub.spawner import AcademySpawner
    from academy.settings import Settings

    s = settings or Settings()
    state = Path(s.state_dir).resolve()
    hub_dir = state / "hub"
    hub_dir.mkdir(parents=True, exist_ok=True)

    # -- the hub and its proxy ---------------------------------------------------------------
    c.JupyterHub.ip = s.hub_ip
    c.JupyterHub.port = s.hub_port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = s.hub_api_port
    # every learner's server on an origin of its own, academy on the hub's (academy.hub.origins)
    c.JupyterHub.subdomain_host = public_url(s)
    c.JupyterHub.subdomain_hook = subdomain_hook
    c.JupyterHub.db_url = f"sqlite:///{hub_dir / 'jupyterhub.sqlite'}"
    fast_sqlite(hub_dir / "jupyterhub.sqlite")
    fast_service_tokens(c)
    c.JupyterHub.cookie_secret_file = str(hub_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(hub_dir / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True
    # the hub starts the proxy and academy in sessions of their own: they follow the hub's death
    c.ConfigurableHTTPProxy.command = following(os.getpid(), [str(PROXY)])
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.hub_proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = str(hub_dir / "proxy.pid")
    c.ConfigurableHTTPProxy.debug = False

    # -- who may log in: academy's users --------------------------------------------------------
    c.JupyterHub.authenticator_class = AcademyAuthenticator
    c.AcademyAuthenticator.academy_url = academy_internal_url(s)
    c.AcademyAuthenticator.service_token = s.service_token
    c.JupyterHub.template_vars = {"announcement_login": "Log in with your ChainAcademy account."}

    # -- learners' JupyterLab --------------------------------------------------------------------
    c.JupyterHub.spawner_class = AcademySpawner
    c.AcademySpawner.home_dir_template = str(hub_dir / "users" / "{username}")
    c.AcademySpawner.academy_url = public_url(s) + s.base_path
    c.AcademySpawner.academy_internal_url = academy_internal_url(s)
    c.AcademySpawner.service_token = s.service_token
    # each server in the learner's jail: the platform's folders are not the learner's to read
    why_not = why_unavailable() if s.hub_isolate else "ACADEMY_HUB_ISOLATE is false"
    c.AcademySpawner.isolate = not why_not
    c.AcademySpawner.isolate_hide = [
        str(p) for p in (state, Path(s.courses_dir).resolve(), s.sandbox_dir) if p
    ]
    if why_not:
        print(f"academy: learners' servers run WITHOUT isolation: {why_not}", file=sys.stderr)
    c.Spawner.start_timeout = s.hub_spawn_timeout
    c.Spawner.http_timeout = s.hub_spawn_timeout
    # the server's own token also reaches academy, which asks the hub whose token it is
    c.Spawner.server_token_scopes = [
        "users:activity!user",
        "access:servers!server",
        "access:services!service=academy",
    ]
    if s.hub_lab:
        # pre-started chains in the lab's shape for the next logins
        c.ProcessBackend.pool_size = int(os.environ.get("ACADEMY_SANDBOX_POOL_SIZE") or POOL_SIZE)
        c.AcademySpawner.isolate_chains = str(Path(s.sandbox_dir or state / "sandbox"))
        c.AcademySpawner.lab_env = sandbox_chains(
            Path(s.hub_lab),
            Path(s.sandbox_dir or state / "sandbox"),
            # absolute: a learner's JupyterLab, where the link is shown, is on another origin
            explorer_base=public_url(s) + s.base_path,
            config=c,
            stop_at_exit=True,
        )
    elif s.hub_chain_rpc_urls:
        urls = [u.strip() for u in s.hub_chain_rpc_urls.split(",") if u.strip()]
        c.AcademySpawner.lab_env = shared_chain(urls)

    # -- academy as a hub-managed service --------------------------------------------------------
    environment = {k: v for k, v in os.environ.items() if k.startswith("ACADEMY_") and v}
    environment.update(
        {
            "ACADEMY_STATE_DIR": str(state),
            "ACADEMY_HOST": "127.0.0.1",
            "ACADEMY_PORT": str(s.port),
            "ACADEMY_BASE_PATH": s.base_path,
            "ACADEMY_COURSES_DIR": str(Path(s.courses_dir).resolve()),
            "ACADEMY_DATABASE_URL": s.database_url,
            "ACADEMY_LEARNER_HOME_TEMPLATE": str(hub_dir / "users" / "{username}"),
        }
    )
    c.JupyterHub.services = [
        {
            "name": "academy",
            "url": f"http://127.0.0.1:{s.port}",
            "command": following(os.getpid(), [sys.executable, "-m", "academy.cli", "serve"]),
            "cwd": os.getcwd(),
            "api_token": s.hub_api_token,
            "environment": environment,
            "oauth_no_confirm": True,
            # academy migrates, seeds and warms its grading pool before it answers
            "timeout": int(s.hub_spawn_timeout),
            "display": True,
        }
    ]
    c.JupyterHub.load_roles = [
        # every user may reach academy (pages through OAuth, API with their server's token)
        {"name": "user", "scopes": ["self", "access:services!service=academy"]},
        {
            "name": "academy-service",
            "services": ["academy"],
            # admin:users: academy creates hub accounts when it enrolls learners, so a first
            # login finds its account instead of creating it (hub.add_users)
            "scopes": ["read:users", "list:users", "admin:users"],
        },
    ]


def exit_on_sigterm() -> None:
    """Until JupyterHub installs its own handlers (once it runs), SIGTERM would end the hub at
    once, skipping the at-exit stop of the lab chains; make it a ``SystemExit`` instead."""

    def _exit(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


if "get_config" in globals():  # loaded by JupyterHub as its config file
    exit_on_sigterm()
    configure(get_config())
    from academy.hub.spawner import warm_parent

    warm_parent()  # imports JupyterLab while the hub starts: no learner waits for that
