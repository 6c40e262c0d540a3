"""Calls only JupyterHub makes, with academy's service token (scope ``hub``).

- ``POST /internal/authenticate``: the hub's authenticator checks a demo login's password.
- ``POST /internal/users/{username}/token``: the spawner gets a learner token to put in the
  single-user server's environment as ``ACADEMY_TOKEN``.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from ..models import Role, id_of
from ..services.errors import Forbidden, Unauthorized
from ..services.identity import (
    check_password,
    ensure_user,
    issue_token,
    revoke_tokens,
    roles_of,
)
from .deps import AcademyState, PrincipalDep, StateDep
from .schemas import LearnerTokenOut, PasswordCheckIn, PasswordCheckOut, error_bodies

router = APIRouter(
    prefix="/internal",
    tags=["internal"],
    responses=error_bodies(401, 403),
)


def _check(state: AcademyState, username: str, password: str) -> PasswordCheckOut | None:
    from sqlmodel import Session

    with Session(state.engine) as session:
        user = check_password(session, username.strip().lower(), password)
        if user is None:
            return None
        admin = any(r.role == Role.platform_admin for r in roles_of(session, id_of(user)))
        return PasswordCheckOut(name=user.username, admin=admin)


@router.post("/authenticate", response_model=PasswordCheckOut)
async def authenticate(
    body: PasswordCheckIn, principal: PrincipalDep, state: StateDep
) -> PasswordCheckOut:
    """200 with the canonical user name when the password is right; 401 otherwise."""
    principal.require_scope("hub")
    result = await run_in_threadpool(_check, state, body.username, body.password)
    if result is None:
        raise Unauthorized("wrong user name or password")
    return result


def _learner_token(state: AcademyState, username: str) -> LearnerTokenOut:
    from sqlmodel import Session

    with Session(state.engine, expire_on_commit=False) as session:
        user, _ = ensure_user(session, username)
        if user.is_service:
            raise Forbidden("service accounts get no learner token")
        # one live JupyterLab token per learner: the server that asks now replaces any earlier
        # one, so tokens left in stopped servers' environments stop working
        revoke_tokens(session, user, "jupyterlab")
        _row, secret = issue_token(session, user, ["learn"], "jupyterlab", timedelta(days=14))
        session.commit()
        return LearnerTokenOut(
            username=user.username, token=secret, scopes=["learn"], language=user.language
        )


@router.post("/users/{username}/token", response_model=LearnerTokenOut, status_code=201)
async def learner_token(username: str, principal: PrincipalDep, state: StateDep) -> LearnerTokenOut:
    """A 14-day token with scope ``learn`` for the user's JupyterLab (``ACADEMY_TOKEN``); the
    user's earlier JupyterLab tokens are revoked."""
    principal.require_scope("hub")
    return await run_in_threadpool(_learner_token, state, username)
