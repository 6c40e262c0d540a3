"""Dependencies shared by every router: settings, database session, the authenticated principal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from ..services.access import ALL_SCOPES, Principal
from ..services.errors import Unauthorized
from ..services.grading import WorkerPool
from ..services.hubauth import HubIdentity
from ..services.identity import ensure_user, principal_for_token, principal_for_user
from ..services.security import TOKEN_PREFIX
from ..settings import Settings

if TYPE_CHECKING:
    from ..services.credentials import AutoIssuer
    from ..services.labchains import LabChains

AUTH_RE = re.compile(r"^\s*(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)


@dataclass
class AcademyState:
    settings: Settings
    engine: Engine
    labchains: LabChains  # each learner's chain per lab
    hub: HubIdentity | None = None
    pool: WorkerPool | None = None
    auto_issuer: AutoIssuer | None = None  # when automatic issuing runs


def hub_accounts(state: AcademyState, names: list[str]) -> None:
    """Give users academy just created or enrolled their hub account now (see HubIdentity)."""
    if state.hub is not None and names:
        state.hub.add_users(names)


def get_state(request: Request) -> AcademyState:
    return request.app.state.academy


def get_session(state: Annotated[AcademyState, Depends(get_state)]) -> Iterator[Session]:
    with Session(state.engine, expire_on_commit=False) as session:
        yield session


def _token_from(request: Request) -> tuple[str | None, str]:
    header = request.headers.get("authorization")
    if header:
        m = AUTH_RE.match(header)
        if not m:
            raise Unauthorized("Authorization header must be 'Bearer <token>' or 'token <token>'")
        return m.group(1), "header"
    return None, ""


#: what a hub token sent as a Bearer token may do in academy: a learner's calls. Such a token is
#: a server's own (``ACADEMY_TOKEN`` in ``deploy/``) or one a user made at the hub; staff reach
#: further through the browser (academy's own OAuth token) or an academy API token of the scopes
#: they choose.
HUB_BEARER_SCOPES = frozenset({"learn"})


def _hub_user(
    state: AcademyState, model: dict, via: str, scopes: frozenset[str] = ALL_SCOPES
) -> Principal:
    with Session(state.engine, expire_on_commit=False) as session:
        user, created = ensure_user(session, model["name"])
        if created:  # most requests come from known users: no write, no commit round trip
            session.commit()
        if user.is_service:
            # a hub user who happens to share a service account's name (an institution system,
            # the hub itself) must not become that account
            raise Unauthorized(f"{user.username!r} is a service account; use its API token")
        return principal_for_user(session, user, via, scopes)


def _academy_token(state: AcademyState, token: str) -> Principal | None:
    with Session(state.engine, expire_on_commit=False) as session:
        return principal_for_token(session, token)


async def get_principal(
    request: Request, state: Annotated[AcademyState, Depends(get_state)]
) -> Principal:
    """Who is calling: an academy API token, a JupyterHub token, or the HubOAuth cookie."""
    token, _where = _token_from(request)
    if token is not None:
        if token.startswith(TOKEN_PREFIX) or state.hub is None:
            principal = await run_in_threadpool(_academy_token, state, token)
            if principal is None:
                raise Unauthorized("unknown API token; check ACADEMY_TOKEN or ask for a new one")
            return principal
        model = await state.hub.user_for_token(token)
        if model is None or not model.get("name"):
            raise Unauthorized("JupyterHub does not know this token; log in again")
        if not state.hub.grants_access(model):
            raise Unauthorized(
                "this JupyterHub token was not granted access to academy "
                f"({' or '.join(sorted(state.hub.access_scopes))}); use an academy API token"
            )
        return await run_in_threadpool(_hub_user, state, model, "hub-token", HUB_BEARER_SCOPES)
    if state.hub is not None:
        cookie = request.cookies.get(state.hub.cookie_name)
        if cookie:
            if request.method not in ("GET", "HEAD", "OPTIONS") and not _same_origin(request):
                raise Unauthorized("cross-site request refused; use an API token")
            model = await state.hub.user_for_token(cookie)
            # academy's own OAuth token (its audience is academy): every scope, within the roles
            if model and model.get("name") and state.hub.grants_access(model):
                return await run_in_threadpool(_hub_user, state, model, "cookie")
    raise Unauthorized(
        "not signed in: send 'Authorization: Bearer <token>' or log in through JupyterHub"
    )


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site", "same-origin") == "same-origin"
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


SessionDep = Annotated[Session, Depends(get_session)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
StateDep = Annotated[AcademyState, Depends(get_state)]
