"""JupyterHub configuration of the embedded platform (``jupyterhub -f embedded_config.py``).

One machine, nothing else installed: the hub and its configurable-http-proxy on
``http://HUB_IP:HUB_PORT``, learners' JupyterLab as local processes (one folder each under
``STATE_DIR/hub/users``), academy as a hub-managed service at ``/services/academy/`` that grades in
its own local pool. Every value comes from :class:`academy.settings.Settings` (``ACADEMY_*`` env
vars), which ``academy up`` and the tests set. The production configuration is in ``deploy/``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

#: the repository root: configurable-http-proxy is installed into its node_modules by bootstrap
ROOT = Path(__file__).resolve().parents[3]
PROXY = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
#: chains kept started for the next learners (one host, a few logins at a time); each idle one
#: costs about 90 MiB and 2-3 % of a core (docs/scaling.md)
POOL_SIZE = 2


def academy_internal_url(settings: Any) -> str:
    """academy as the hub reaches it directly (no proxy hop), base path included."""
    return f"http://127.0.0.1:{settings.port}{settings.base_path}"


def public_url(settings: Any) -> str:
    return f"http://{settings.hub_ip}:{settings.hub_port}"


def configure(c: Any, settings: Any | None = None) -> None:
    """Fill the traitlets config ``c`` from the academy settings."""
    from academy.hub.authenticator import AcademyAuthenticator
    from academy.hub.labchains import sandbox_chains, shared_chain
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
    c.JupyterHub.db_url = f"sqlite:///{hub_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(hub_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(hub_dir / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True
    c.ConfigurableHTTPProxy.command = [str(PROXY)]
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
    c.Spawner.start_timeout = s.hub_spawn_timeout
    c.Spawner.http_timeout = s.hub_spawn_timeout
    # the server's own token also reaches academy, which asks the hub whose token it is
    c.Spawner.server_token_scopes = [
        "users:activity!user",
        "access:servers!server",
        "access:services!service=academy",
    ]
    if s.hub_lab:
        # pre-started chains in the lab's shape for the next logins (the docker backend keeps none)
        c.ProcessBackend.pool_size = int(os.environ.get("ACADEMY_SANDBOX_POOL_SIZE") or POOL_SIZE)
        c.AcademySpawner.lab_env = sandbox_chains(
            Path(s.hub_lab),
            Path(s.sandbox_dir or state / "sandbox"),
            explorer_base=s.base_path,
            config=c,
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
        }
    )
    c.JupyterHub.services = [
        {
            "name": "academy",
            "url": f"http://127.0.0.1:{s.port}",
            "command": [sys.executable, "-m", "academy.cli", "serve"],
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
            "scopes": ["read:users", "list:users"],
        },
    ]


if "get_config" in globals():  # loaded by JupyterHub as its config file
    configure(get_config())  # type: ignore[name-defined]  # noqa: F821
    from academy.hub.spawner import warm_parent

    warm_parent()  # imports JupyterLab while the hub starts: no learner waits for that
