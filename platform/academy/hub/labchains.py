"""The learner's lab chain, handed to their server at spawn as ``ACADEMY_RPC_URL(S)``.

Two sources, chosen by what the machine has:

- ``labs.sandbox`` (one chain per learner and lab): ``ensure(learner, lab_spec)`` starts or reuses the
  learner's own chain for the lab in ``lab.toml``;
- a shared chain that ``academy up`` started (``ACADEMY_HUB_CHAIN_RPC_URLS``), for a hub run without
  a lab spec: every learner reaches the same network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

LabEnvFn = Callable[[str], Awaitable[dict[str, str]]]


def sandbox_chains(
    lab_toml: Path, state_dir: Path, explorer_base: str = "", config: Any = None
) -> LabEnvFn:
    """Per-learner chains for the lab in ``lab_toml`` through ``labs.sandbox``.

    With ``explorer_base`` (academy's base path) the learner's server also gets
    ``ACADEMY_EXPLORER_URL``, the explorer page of their own chain. ``config`` (the hub's traitlets
    config) reaches the manager and its backend: ``c.SandboxManager.backend_class``,
    ``c.ProcessBackend.pool_size`` and so on. A warm pool is kept in the lab's own shape (its
    validators and consensus) and filled in the background from now on, so the first learners
    after the hub starts claim a running chain instead of waiting for one to start.
    """
    from labs.sandbox import LabSpec, SandboxManager

    spec = LabSpec.from_toml(lab_toml)
    template = f"{explorer_base}/explorer/{{env_id}}" if explorer_base else ""
    manager = SandboxManager(
        config=config, state_dir=str(state_dir), explorer_url_template=template
    )
    backend = manager.backend
    if spec.chain is not None and getattr(backend, "pool_size", 0) > 0:
        backend.pool_validators = spec.chain.validators
        backend.pool_consensus = spec.chain.consensus
        manager.warm()
    # courses/<course>/source/<lab>/lab.toml: labs.client asks academy for this lab's chain by
    # name, so a notebook outside any lab folder still follows it when it restarts
    folder = Path(lab_toml).resolve().parent
    named = (
        {"ACADEMY_LAB": f"{folder.parents[1].name}/{spec.id}"}
        if folder.parent.name == "source"
        else {}
    )

    async def lab_env(learner: str) -> dict[str, str]:
        # ensure() blocks until every validator answers: keep the hub's event loop free meanwhile
        env = await asyncio.to_thread(manager.ensure, learner, spec)
        return {**env.environment(), **named}

    return lab_env


def shared_chain(rpc_urls: list[str]) -> LabEnvFn:
    """Every learner gets the same chain (the one ``academy up`` started)."""

    async def lab_env(learner: str) -> dict[str, str]:
        return {"ACADEMY_RPC_URL": rpc_urls[0], "ACADEMY_RPC_URLS": ",".join(rpc_urls)}

    return lab_env
