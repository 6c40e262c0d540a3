"""What a learner's lab environment looks like to its callers (the hub's spawn hook, academy)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["running", "starting", "stopped", "missing", "failed"]


@dataclass
class LabEnv:
    """One learner's chain for one lab.

    ``rpc_urls`` are the URLs *the learner's server* uses (inside the learner's network for the
    docker backend, loopback for the process backend); ``rpc_url`` is the first.
    """

    env_id: str
    learner: str
    lab_id: str
    backend: str
    status: Status
    rpc_urls: list[str] = field(default_factory=list)
    explorer_url: str | None = None
    network: str | None = None
    """The learner's network name (docker): the learner's own server joins it and nothing else."""
    accounts: list[dict[str, str]] = field(default_factory=list)
    """Funded development accounts of this chain: ``{"address", "private_key"}``."""
    contracts: dict[str, Any] = field(default_factory=dict)
    """Preloaded contracts by name: ``{"address", "abi"}``."""
    last_activity: float = 0.0
    sdk_config: str | None = None
    """The chain's ChainMaker ``sdk_config.yml`` on the machine that runs it (see
    :mod:`labs.minichain.chainmaker.handover` for the learner's own copy)."""

    @property
    def rpc_url(self) -> str | None:
        return self.rpc_urls[0] if self.rpc_urls else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def environment(self) -> dict[str, str]:
        """The variables the learner's server gets (see HELPERS: ACADEMY_RPC_URL[S])."""
        env = {
            "ACADEMY_RPC_URL": self.rpc_url or "",
            "ACADEMY_RPC_URLS": ",".join(self.rpc_urls),
            "ACADEMY_LAB_ID": self.lab_id,
            # funded development keys of this learner's own throwaway chain (labs.client.accounts)
            "ACADEMY_PRIVATE_KEYS": ",".join(a["private_key"] for a in self.accounts),
        }
        if self.explorer_url:
            env["ACADEMY_EXPLORER_URL"] = self.explorer_url
        if self.sdk_config:
            env["ACADEMY_CHAINMAKER_SDK_CONFIG"] = self.sdk_config
        return env


_UNSAFE = re.compile(r"[^a-z0-9]+")


def env_id(learner: str, lab_id: str) -> str:
    """A name usable for folders, containers, networks and volumes, unique per (learner, lab).

    Learner names may hold any character (e-mail addresses, Chinese names), so the readable part is
    folded to ``[a-z0-9-]`` and a hash of the exact pair keeps two similar names apart.
    """
    lab = _UNSAFE.sub("-", lab_id.lower()).strip("-")[:16] or "lab"
    return (
        f"{learner_slug(learner)}-{lab}-"
        + (hashlib.sha256(f"{learner}\0{lab_id}".encode()).hexdigest()[:8])
    )


def learner_slug(learner: str) -> str:
    """The readable, collision-free part of names that belong to one learner."""
    readable = _UNSAFE.sub("-", learner.lower()).strip("-")[:16] or "learner"
    return f"{readable}-{hashlib.sha256(learner.encode()).hexdigest()[:6]}"
