"""The learner's chain for the lab they open: ``POST /me/labs/{course}/{lab}/env`` starts or reuses it.

``labs.client`` calls it from a lab notebook (the lab is the notebook's folder ``~/<course>/<lab>/``),
so every lab runs on the topology its ``lab.toml`` asks for: one solo validator for the crypto labs,
four TBFT validators with fault switches for the consensus labs, and so on.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from ..services.access import Principal
from ..services.labchains import LabChain, lab_toml
from .deps import AcademyState, PrincipalDep, StateDep
from .schemas import LabEnvOut, error_bodies

router = APIRouter(
    tags=["learner"],
    responses=error_bodies(401, 403, 404, 409),
)


def _path(state: AcademyState, principal: Principal, course: str, lab: str) -> Path:
    with Session(state.engine) as session:
        return lab_toml(session, state.settings, principal, course, lab)


def _out(chain: LabChain) -> LabEnvOut:
    spec, env = chain.spec, chain.env
    body = LabEnvOut(course=chain.course, lab=spec.id, title=spec.title, status="none")
    if spec.chain is not None:
        body.consensus = spec.chain.consensus
        body.validators = spec.chain.validators
        body.faults = list(spec.chain.faults)
    if env is not None:
        body.status = env.status
        body.env_id = env.env_id
        body.rpc_url = env.rpc_url
        body.rpc_urls = env.rpc_urls
        body.explorer_url = env.explorer_url
        body.accounts = env.accounts
        body.contracts = env.contracts
        body.environment = env.environment() if env.status == "running" else {}
    return body


@router.post(
    "/me/labs/{course}/{lab}/env",
    response_model=LabEnvOut,
    responses=error_bodies(503),
)
async def ensure_lab_env(
    course: str, lab: str, principal: PrincipalDep, state: StateDep
) -> LabEnvOut:
    """Your chain for this lab, started (or restarted, state kept) if it is not running: RPC URLs
    of every validator, the explorer page, funded keys, preloaded contracts, and ``environment``
    (the ``ACADEMY_*`` variables a notebook uses). Takes seconds the first time; counts as use,
    so the idle cull leaves the chain alone."""
    path = await run_in_threadpool(_path, state, principal, course, lab)
    learner = principal.user.username
    chain = await run_in_threadpool(state.labchains.ensure, learner, course, lab, path)
    return _out(chain)


@router.get("/me/labs/{course}/{lab}/env", response_model=LabEnvOut)
async def lab_env(course: str, lab: str, principal: PrincipalDep, state: StateDep) -> LabEnvOut:
    """Your chain for this lab as it is now (``missing``, ``stopped`` or ``running``); starts nothing."""
    path = await run_in_threadpool(_path, state, principal, course, lab)
    chain = await run_in_threadpool(
        state.labchains.status, principal.user.username, course, lab, path
    )
    return _out(chain)
