"""The interface every sandbox backend implements, configured with traitlets like JupyterHub spawners.

A backend knows how to create, start, stop and inspect one chain; the manager
(:mod:`labs.sandbox.manager`) keeps the per-learner bookkeeping (activity, preloads) above it, so a
new backend (Kubernetes pods, say) is one class of five methods.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from traitlets import Int, Unicode, default
from traitlets.config import LoggingConfigurable

from .spec import LabSpec


class BackendError(RuntimeError):
    """The backend could not do what was asked; the message says what to do."""


class Backend(LoggingConfigurable):
    """Base class: one instance serves every learner's environments of one manager."""

    name = "base"

    state_dir = Unicode(
        ".state/sandbox", help="Folder for the backend's own files (process backend: the chains)."
    ).tag(config=True)

    pool_size = Int(
        0,
        help="Chains kept started and unclaimed, so a learner's first ensure only claims one "
        "(the shape below must match the lab's chain). Default: $ACADEMY_SANDBOX_POOL_SIZE or 0.",
    ).tag(config=True)
    pool_validators = Int(4, help="Validators of a pool chain.").tag(config=True)
    pool_consensus = Unicode("tbft", help="Consensus of a pool chain.").tag(config=True)

    @default("pool_size")
    def _pool_size_from_env(self) -> int:
        # lets an embedded hub (which builds its manager without a config file) keep a pool
        return int(os.environ.get("ACADEMY_SANDBOX_POOL_SIZE", "0") or 0)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    def _pool_fits(self, spec: LabSpec) -> bool:
        """Whether a pool chain can serve this lab: same shape, nothing lab-specific in it."""
        c = spec.chain
        return (
            self.pool_size > 0
            and c is not None
            and (c.validators, c.consensus, c.identity)
            == (self.pool_validators, self.pool_consensus, "permissionedWithCert")
            and not c.params
        )

    def start(self, env_id: str, learner: str, spec: LabSpec) -> list[str]:
        """Create the chain on first use, start it, wait until every validator answers.

        Returns the RPC URLs as the learner's server reaches them.
        """
        raise NotImplementedError

    def network_name(self, learner: str) -> str | None:
        """The network a learner's server must join to reach its chains (None: loopback)."""
        return None

    def sdk_config(self, env_id: str) -> str | None:
        """Where the running chain's ChainMaker ``sdk_config.yml`` is on this machine (None: the
        chain has no ChainMaker orgs, or the backend keeps it where the learner's server cannot
        copy it from)."""
        return None

    def info(self, env_id: str) -> dict[str, Any]:
        """``{"accounts": [...], "contracts": {...}, "nodes": [{"url", "height"}]}``."""
        raise NotImplementedError

    def preload(self, env_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Deploy ``{name, data, abi}`` items once each; returns every preloaded contract."""
        raise NotImplementedError

    def is_running(self, env_id: str) -> bool:
        raise NotImplementedError

    def exists(self, env_id: str) -> bool:
        raise NotImplementedError

    def stop(self, env_id: str) -> bool:
        """Stop the chain, keeping its state. True when something was running."""
        raise NotImplementedError

    def destroy(self, env_id: str) -> None:
        """Stop and delete the chain and its state (a fresh start next time)."""
        raise NotImplementedError

    def fill_pool(self) -> int:
        """Pre-start chains so a first ``ensure`` only claims one (backends that can)."""
        return 0

    def drain_pool(self) -> None:
        """Stop the unclaimed pre-started chains."""

    def close(self) -> None:
        """Release connections (not environments)."""
