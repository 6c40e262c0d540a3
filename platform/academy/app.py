"""The academy web application: ``create_app(settings)`` builds it, routes under ``base_path``.

On start it migrates the database (Alembic), registers the hub's service token, optionally seeds
the demo, and starts the in-process grading workers; on stop it lets them finish their job.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .api import routers
from .api.deps import AcademyState
from .db import make_engine, session_scope, upgrade
from .services.errors import AcademyError
from .settings import Settings

log = logging.getLogger("academy")


def _startup(state: AcademyState) -> None:
    settings = state.settings
    if settings.migrate_on_start:
        upgrade(settings)
    if settings.service_token:
        from .services.identity import register_service_token

        with session_scope(state.engine) as session:
            register_service_token(session, settings.service_token)
    if settings.seed_demo:
        from .services.seed import seed_demo

        seed_demo(settings, state.engine)
    if state.hub is not None:
        from sqlmodel import Session, col, select

        from .models import User

        with Session(state.engine) as session:
            names = session.exec(select(User.username).where(col(User.is_service).is_(False))).all()
        state.hub.add_users_in_background(list(names))
    if settings.credentials_auto_seconds > 0:
        from .services.credentials import AutoIssuer

        state.auto_issuer = AutoIssuer(settings, state.engine).start()
    if settings.grade_workers > 0:
        from .services.grading import WorkerPool

        state.pool = WorkerPool(state.engine, settings)
        state.pool.start()
    state.labchains.start_culler()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI app: API at ``{base}/api``, OpenAPI at ``{base}/openapi.json``."""
    settings = settings or Settings()
    base = settings.base_path
    from .services.labchains import LabChains

    state = AcademyState(
        settings=settings, engine=make_engine(settings), labchains=LabChains(settings)
    )
    if settings.hub_api_token:
        from .services.hubauth import HubIdentity

        state.hub = HubIdentity(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(_startup, state)
        try:
            yield
        finally:
            if state.pool is not None:
                await run_in_threadpool(state.pool.stop)
            if state.auto_issuer is not None:
                await run_in_threadpool(state.auto_issuer.stop)
            await run_in_threadpool(state.labchains.close)
            state.engine.dispose()

    app = FastAPI(
        title="ChainAcademy academy API",
        version="1",
        description="Institutions, cohorts, assignments, submissions and grades. "
        "Authenticate with `Authorization: Bearer <token>` (an academy API token or a "
        "JupyterHub token) or the hub's OAuth cookie.",
        openapi_url=f"{base}/openapi.json",
        docs_url=f"{base}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.academy = state
    from .security_headers import SecurityHeaders

    app.add_middleware(SecurityHeaders, base=base)
    _error_handlers(app)
    api = APIRouter(prefix=f"{base}/api")
    for router in routers():
        api.include_router(router)
    app.include_router(api)
    from .pages import routers as page_routers

    for router in page_routers():
        app.include_router(router, prefix=base)
    app.include_router(_session_routes(state, base))
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AcademyError)
    async def academy_error(request: Request, exc: AcademyError) -> Response:
        if _wants_page(request):
            from .pages.layout import error_page

            return error_page(request, exc.status, exc.message)
        body: dict = {"detail": exc.message}
        if isinstance(exc.detail, dict):
            body.update(exc.detail)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        return JSONResponse(
            {"detail": f"{where}: {first.get('msg', 'invalid')}", "errors": _plain(errors)},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )


def _wants_page(request: Request) -> bool:
    """A browser asking for one of the pages (not the API) gets its errors as a page too."""
    base = request.app.state.academy.settings.base_path
    return not request.url.path.startswith(base + "/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


def _plain(errors: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in errors]


def _session_routes(state: AcademyState, base: str) -> APIRouter:
    """Browser sign-in through the hub (HubOAuth), and a health check for whoever starts us."""
    router = APIRouter(prefix=base, include_in_schema=False)

    @router.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(base + "/me/", status_code=302)

    @router.get("/health")
    def health() -> dict:
        return {"ok": True}

    from .security_headers import cookie_secure

    def set_cookie(
        response: Response, request: Request, name: str, value: str, max_age: int | None = None
    ) -> None:
        """academy's own cookies: its path only, out of scripts' reach, Secure under https."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=base + "/",
            httponly=True,
            samesite="lax",
            secure=cookie_secure(request, state.settings.public_url),
        )

    @router.get("/login")
    def login(request: Request, next: str = "") -> Response:  # noqa: A002
        if state.hub is None:
            return JSONResponse({"detail": "not running behind JupyterHub: use an API token"}, 404)
        target = next if next.startswith("/") and not next.startswith("//") else base + "/"
        url, state_id, _verifier = state.hub.login_redirect(target)
        response = RedirectResponse(url, status_code=302)
        set_cookie(response, request, state.hub.auth.state_cookie_name, state_id, max_age=600)
        return response

    @router.get("/oauth_callback")
    async def oauth_callback(request: Request, code: str = "", state_param: str = "") -> Response:
        if state.hub is None:
            return JSONResponse({"detail": "not running behind JupyterHub"}, 404)
        state_id = request.query_params.get("state", "")
        cookie_state = request.cookies.get(state.hub.auth.state_cookie_name)
        if not code or not state_id or state_id != cookie_state:
            return JSONResponse(
                {"detail": "OAuth state mismatch: start again at the login page"}, 400
            )
        token, next_url = await state.hub.finish_login(code, state_id)
        response = RedirectResponse(next_url or base + "/", status_code=302)
        response.delete_cookie(state.hub.auth.state_cookie_name, path=base + "/")
        set_cookie(response, request, state.hub.cookie_name, token)
        return response

    @router.get("/logout")
    def logout() -> RedirectResponse:
        response = RedirectResponse(base + "/", status_code=302)
        if state.hub is not None:
            response.delete_cookie(state.hub.cookie_name, path=base + "/")
        return response

    return router
