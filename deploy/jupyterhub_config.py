"""Production JupyterHub for one host: DockerSpawner, one lab network per learner, idle culling.

Runs inside the ``hub`` service of ``deploy/compose.yaml`` (``jupyterhub -f /srv/jupyterhub_config.py``)
with the Docker socket mounted. Every value comes from an environment variable with the ``ACADEMY_``
prefix (defaults in brackets), so the same file serves every deployment:

- ``ACADEMY_PUBLIC_URL`` [http://localhost:8000]: what learners type in; academy lives under it at
  ``ACADEMY_BASE_PATH`` [/services/academy]. Its host must be a name, not an address: learner
  NAME's server is served at ``NAME.<that host>``, an origin of its own (``subdomain_host``), so
  the name needs a wildcard DNS record (and under https a wildcard certificate);
- ``ACADEMY_INTERNAL_URL`` [http://academy:8000]: academy as the hub and learners' servers reach
  it (academy's container joins every learner network; learners' networks have no route out);
- ``ACADEMY_SERVICE_TOKEN``: the token the hub's authenticator shows academy (academy has it too);
- ``ACADEMY_HUB_CONNECT_URL`` [http://hub:8081] and ``ACADEMY_PROXY_API_URL`` [http://proxy:8001]:
  the hub as learners' servers reach it, and the proxy's API as the hub reaches it;
- ``ACADEMY_HUB_DB_URL``: the hub's own database (PostgreSQL in production);
- ``ACADEMY_LEARNER_IMAGE`` / ``ACADEMY_NODE_IMAGE``: learner JupyterLab and minichain node images;
- ``ACADEMY_DEFAULT_LAB`` [/srv/courses/consensus/source/tbft/lab.toml]: the lab whose chain a learner gets when the
  spawn request names none (``user_options["lab"]`` names a lab.toml under ``ACADEMY_COURSES_DIR``);
- ``ACADEMY_IDLE_TIMEOUT`` [3600]: seconds before an idle server and its chains are stopped;
- ``ACADEMY_SANDBOX_POOL_SIZE`` [4]: chains kept started (paused) for the next first spawns;
- ``ACADEMY_AUTHENTICATOR`` [academy.hub.authenticator.AcademyAuthenticator]: who may log in;
- ``ACADEMY_PLATFORM_CONTAINERS`` [hub,proxy,academy]: containers that must reach every learner
  (they are connected to each learner's network at spawn; nothing else is).

How a spawn goes: the pre-spawn hook asks ``labs.sandbox`` (docker backend) for the learner's chain
(``ensure``), connects the platform containers to the learner's internal network, and starts the
learner's container on that network only, with ``ACADEMY_RPC_URL(S)``, ``ACADEMY_URL`` and
``ACADEMY_TOKEN`` in its environment. The network has no route out and no other learner on it.
When a server stops (the learner, an admin, or jupyterhub-idle-culler), the post-stop hook stops
the learner's chains too; the ``lab-culler`` service stops chains whose server is long gone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from academy.hub.origins import learner_subdomains, subdomain_hook
from dockerspawner import DockerSpawner
from traitlets.config import Config

from labs.sandbox import LabSpec, SandboxManager

if TYPE_CHECKING:
    from labs.sandbox.docker_backend import DockerBackend

    def get_config() -> Config: ...  # JupyterHub puts it in a config file's namespace


def env(name: str, default: str) -> str:
    return os.environ.get(f"ACADEMY_{name}", default)


PUBLIC_URL = env("PUBLIC_URL", "http://localhost:8000").rstrip("/")
BASE_PATH = env("BASE_PATH", "/services/academy")
COURSES_DIR = Path(env("COURSES_DIR", "/srv/courses"))
DEFAULT_LAB = env("DEFAULT_LAB", str(COURSES_DIR / "consensus/source/tbft/lab.toml"))
INTERNAL_URL = env("INTERNAL_URL", "http://academy:8000").rstrip("/")
IDLE_TIMEOUT = int(env("IDLE_TIMEOUT", "3600"))
DOCKER_URL = env("DOCKER_URL", "unix:///var/run/docker.sock")
PLATFORM_CONTAINERS = [
    n.strip() for n in env("PLATFORM_CONTAINERS", "hub,proxy,academy").split(",") if n.strip()
]


def sandbox_config() -> Config:
    """The lab-environment manager's settings; also written out for the ``lab-culler`` service."""
    sc = Config()
    sc.SandboxManager.backend_class = "docker"
    # shared with academy (compose volume sandbox-data): it starts the chain of each lab opened
    sc.SandboxManager.state_dir = env("SANDBOX_STATE_DIR", "/srv/sandbox")
    sc.SandboxManager.explorer_url_template = PUBLIC_URL + BASE_PATH + "/explorer/{env_id}"
    sc.DockerBackend.base_url = DOCKER_URL
    sc.DockerBackend.image = env("NODE_IMAGE", "chainacademy/node:latest")
    sc.DockerBackend.topology = "network"
    sc.DockerBackend.mem_limit = env("CHAIN_MEM_LIMIT", "384m")
    sc.DockerBackend.cpus = float(env("CHAIN_CPUS", "1.0"))
    sc.DockerBackend.pids_limit = int(env("CHAIN_PIDS_LIMIT", "128"))
    # chains of the default lab's shape started ahead and paused (~115 MiB each, no CPU): a first
    # spawn claims one instead of a cold start; the lab-culler service keeps the pool full
    sc.DockerBackend.pool_size = int(env("SANDBOX_POOL_SIZE", "4"))
    sc.DockerBackend.network_prefix = env("SANDBOX_NETWORK_PREFIX", "ca-net-")
    return sc


def sandbox_environment() -> dict[str, str]:
    """The variables sandbox_config() reads: a hub-managed service gets none of the hub's own
    environment, so the lab-culler service is handed these to build the same manager."""
    keys = ("SANDBOX_", "CHAIN_", "DOCKER_URL", "NODE_IMAGE", "PUBLIC_URL", "BASE_PATH")
    return {
        k: v for k, v in os.environ.items() if k.startswith(tuple("ACADEMY_" + p for p in keys))
    }


_manager: SandboxManager | None = None


def sandbox() -> SandboxManager:
    global _manager
    if _manager is None:
        _manager = SandboxManager(config=sandbox_config())
    return _manager


def lab_spec_for(spawner: Any) -> LabSpec | None:
    """The lab whose chain this spawn needs: the one named in the spawn request, or the default."""
    named = (spawner.user_options or {}).get("lab")
    path = (COURSES_DIR / named) if named else Path(DEFAULT_LAB)
    if COURSES_DIR.resolve() not in path.resolve().parents and path != Path(DEFAULT_LAB):
        raise ValueError(f"lab {named!r} is not under the courses folder: name a course lab")
    if not path.exists():
        return None
    spec = LabSpec.from_toml(path)
    return spec if spec.chain is not None else None


async def pre_spawn_hook(spawner: Any) -> None:
    """Give the learner their chain and put their server on their network, and only there."""
    import asyncio

    learner = spawner.user.name
    spec = lab_spec_for(spawner)
    manager = sandbox()
    network = _docker(manager).network_name(learner)
    if spec is not None:
        lab = await asyncio.to_thread(manager.ensure, learner, spec)
        spawner.environment.update(lab.environment())
    else:
        await asyncio.to_thread(_docker(manager)._ensure_network, learner)
    await asyncio.to_thread(_connect_platform, manager, network)
    spawner.network_name = network  # DockerSpawner: network_mode and the IP it connects to
    spawner.environment.update(
        {"ACADEMY_URL": INTERNAL_URL + BASE_PATH, "ACADEMY_TOKEN": spawner.api_token or ""}
    )


def _docker(manager: SandboxManager) -> DockerBackend:
    """The docker backend that :func:`sandbox_config` chooses (hooks use its network calls)."""
    from labs.sandbox.docker_backend import DockerBackend

    backend = manager.backend
    assert isinstance(backend, DockerBackend), "deploy/ runs lab chains on the docker backend"
    return backend


def _connect_platform(manager: SandboxManager, network: str) -> None:
    """The hub, proxy and academy must reach the learner's server: join them to its network."""
    import docker.errors

    client = _docker(manager).client
    net = client.networks.get(network)
    attached = {c.name for c in net.containers}
    for name in PLATFORM_CONTAINERS:
        if name not in attached:
            try:
                net.connect(name)
            except docker.errors.APIError as exc:
                if "already" not in str(exc):
                    raise


async def post_stop_hook(spawner: Any) -> None:
    """The learner's server stopped (by them, an admin, or the idle culler): stop their chains."""
    import asyncio

    await asyncio.to_thread(sandbox().stop, spawner.user.name)


class AcademyDockerSpawner(DockerSpawner):
    """DockerSpawner whose containers join only their learner's lab network (set per spawn)."""


c = get_config()

# -- the hub ------------------------------------------------------------------------------------
c.JupyterHub.bind_url = "http://:8000"
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = env("HUB_CONNECT_URL", "http://hub:8081")
c.JupyterHub.db_url = env("HUB_DB_URL", "sqlite:////srv/jupyterhub/jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = "/srv/jupyterhub/jupyterhub_cookie_secret"
c.JupyterHub.cleanup_servers = False  # learners' servers survive a hub restart
# learner NAME's server at NAME.<public host>, an origin of its own: nothing it serves can read
# academy's answers or post to academy with the cookie of whoever opens it; academy (a service)
# stays on the hub's host (academy.hub.origins). The proxy routes by host (--host-routing).
c.JupyterHub.subdomain_host = learner_subdomains(PUBLIC_URL, "ACADEMY_PUBLIC_URL")
c.JupyterHub.subdomain_hook = subdomain_hook
# the proxy runs in its own container (compose service `proxy`), sharing CONFIGPROXY_AUTH_TOKEN
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = env("PROXY_API_URL", "http://proxy:8001")
c.ConfigurableHTTPProxy.auth_token = os.environ.get("CONFIGPROXY_AUTH_TOKEN", "")

# -- who logs in: academy's users (the embedded authenticator asks academy) ---------------------
c.JupyterHub.authenticator_class = env(
    "AUTHENTICATOR", "academy.hub.authenticator.AcademyAuthenticator"
)
c.Authenticator.allow_all = True
c.AcademyAuthenticator.academy_url = INTERNAL_URL + BASE_PATH
c.AcademyAuthenticator.service_token = os.environ.get("ACADEMY_SERVICE_TOKEN", "")

# -- learners' servers --------------------------------------------------------------------------
c.JupyterHub.spawner_class = AcademyDockerSpawner
c.DockerSpawner.client_kwargs = {"base_url": DOCKER_URL}
c.DockerSpawner.image = env("LEARNER_IMAGE", "chainacademy/learner:latest")
c.DockerSpawner.pull_policy = "never"  # images are built and loaded on the host
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.network_name = "none"  # replaced at every spawn by the learner's own network
c.DockerSpawner.remove = True
c.DockerSpawner.name_template = "jupyter-{username}"
c.DockerSpawner.notebook_dir = "/home/jovyan/work"
c.DockerSpawner.volumes = {"jupyterhub-user-{username}": "/home/jovyan/work"}
# JupyterHub's byte sizes take upper-case units only; accept Docker's "768m" as well
c.DockerSpawner.mem_limit = env("LEARNER_MEM_LIMIT", "1G").upper()
c.DockerSpawner.cpu_limit = float(env("LEARNER_CPUS", "1.0"))
c.DockerSpawner.extra_host_config = {
    "pids_limit": 512,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
}
c.DockerSpawner.default_url = "/lab"
c.Spawner.pre_spawn_hook = pre_spawn_hook
c.Spawner.post_stop_hook = post_stop_hook
# the server's own token (ACADEMY_TOKEN) also reaches academy, which asks the hub whose it is
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "access:services!service=academy",
]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60

# -- services: academy, the idle culler, and the lab-environment culler ------------------------
c.JupyterHub.services = [
    {
        "name": "academy",
        "url": INTERNAL_URL,
        "api_token": os.environ.get("ACADEMY_HUB_API_TOKEN", ""),
        "oauth_no_confirm": True,
        # the callback academy's HubOAuth names (on the hub's host, which is academy's); with
        # subdomain_host the hub would otherwise register an absolute one and refuse academy's
        "oauth_redirect_uri": BASE_PATH + "/oauth_callback",
    },
    {
        "name": "idle-culler",
        "command": [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={IDLE_TIMEOUT}",
            "--cull-every=300",
        ],
    },
    {
        "name": "lab-culler",
        "environment": sandbox_environment(),
        # chains whose server is gone (a crash, a hub restart) are stopped after the same idle time
        "command": [
            sys.executable,
            "-m",
            "labs.sandbox",
            "--config",
            str(Path(__file__).resolve()),
            "cull",
            f"--idle-for={IDLE_TIMEOUT}",
            "--every=300",
        ],
    },
]
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=academy"]},
    {
        "name": "academy-service",
        "services": ["academy"],
        # admin:users: academy creates the hub accounts of the learners it enrolls, ahead of
        # their first login (a first login that has to create the account is the slowest step)
        "scopes": ["read:users", "list:users", "admin:users"],
    },
    {
        "name": "idle-culler",
        "services": ["idle-culler"],
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    },
]

# the lab-culler service loads this same file: give it the sandbox settings
c.merge(sandbox_config())
