"""One sandboxed mini-chain per learner and lab.

The whole API is five calls on :class:`SandboxManager`::

    from labs.sandbox import LabSpec, SandboxManager

    manager = SandboxManager(backend_class="docker")          # or "process" (the default)
    env = manager.ensure("alice", LabSpec.from_toml("courses/c/source/lab/lab.toml"))
    env.rpc_urls, env.accounts, env.contracts, env.network     # what the learner's server needs
    env.environment()                                           # ACADEMY_RPC_URL(S) for the spawner
    manager.status("alice", "lab"); manager.stop("alice"); manager.list(); manager.cull(3600)

``ensure`` is idempotent: it creates the chain on first use (state kept per learner and lab), starts
it when stopped, preloads the lab's contracts once, and returns when every validator answers.

Backends are traitlets-configurable classes, the way JupyterHub's spawners are
(``c.SandboxManager.backend_class = "docker"``, ``c.DockerBackend.mem_limit = "512m"``):

- ``process`` (:mod:`labs.sandbox.process`): validators as local processes on loopback;
- ``docker`` (:mod:`labs.sandbox.docker_backend`): the docker SDK against any Docker-API engine (Docker
  Engine, or podman's API service: ``deploy/podman-engine.sh``); per-learner internal network with no
  route out, resource limits, read-only root, non-root, no capabilities, state on a volume.

This package imports neither ``grader`` nor ``academy``.
"""

from .backend import Backend, BackendError
from .env import LabEnv, env_id
from .manager import SandboxManager
from .spec import ChainSpec, LabSpec, Preload, SpecError

__all__ = [
    "Backend",
    "BackendError",
    "ChainSpec",
    "LabEnv",
    "LabSpec",
    "Preload",
    "SandboxManager",
    "SpecError",
    "env_id",
]
