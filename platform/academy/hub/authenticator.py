"""Log users in at the hub with the passwords academy keeps.

academy owns the users (institution admins create them, CSV enrollment adds them), so the hub asks
academy's internal password-check endpoint instead of keeping its own user list. The call carries
the service token the hub and academy share; academy answers who the user is and whether they are
a platform admin (who then also administers the hub).
"""

from __future__ import annotations

from typing import Any

import httpx
from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Float, Unicode, default


class AcademyAuthenticator(Authenticator):
    """Password login checked by academy (``POST {academy}/api/internal/authenticate``)."""

    academy_url = Unicode(
        config=True,
        help="academy's own address as the hub reaches it, with its base path "
        "(e.g. http://127.0.0.1:8890/services/academy)",
    )
    service_token = Unicode(config=True, help="token academy accepts from the hub (scope `hub`)")
    check_path = Unicode(
        "/api/internal/authenticate", config=True, help="password-check endpoint below academy_url"
    )
    timeout = Float(30.0, config=True, help="seconds to wait for academy's answer")

    @default("allow_all")
    def _allow_all(self) -> bool:
        # academy decides who exists and may log in; the hub admits whoever academy vouches for.
        return True

    _client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                headers={"Authorization": f"Bearer {self.service_token}"},
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            )
        return self._client

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        """Return the hub user model for a correct password, None (the hub says 'invalid') else."""
        username = (data.get("username") or "").strip()
        password = data.get("password") or ""
        if not username or not password:
            return None
        url = self.academy_url.rstrip("/") + self.check_path
        try:
            reply = await self._http().post(url, json={"username": username, "password": password})
        except httpx.HTTPError as exc:
            # not the learner's fault: say so, rather than "invalid username or password"
            self.log.error("academy did not answer the password check at %s: %s", url, exc)
            raise web.HTTPError(503, "academy is not answering; try again in a minute") from None
        if reply.status_code in (401, 403, 404, 422):
            self.log.warning("login refused for %r", username)
            return None
        if reply.status_code != 200:
            self.log.error("academy password check %s answered %s", url, reply.status_code)
            raise web.HTTPError(503, "academy could not check the password; try again in a minute")
        body = reply.json()
        model: dict[str, Any] = {"name": body.get("name") or body.get("username") or username}
        if "admin" in body:
            model["admin"] = bool(body["admin"])
        return model
