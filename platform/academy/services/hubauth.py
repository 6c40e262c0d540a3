"""Users signed in at JupyterHub: their hub tokens and the HubOAuth browser cookie.

jupyterhub.services.auth.HubOAuth does the talking to the hub (who owns this token, the OAuth
code exchange, PKCE) and caches answers; academy only maps the hub user name to its own user row.
Roles never come from the hub: they live in academy's tables.
"""

from __future__ import annotations

import logging
from typing import Any

from ..settings import Settings
from .errors import Unavailable

log = logging.getLogger("academy.hubauth")


class HubIdentity:
    """A thin holder of one HubOAuth instance configured from academy's settings."""

    def __init__(self, settings: Settings) -> None:
        from jupyterhub.services.auth import HubOAuth

        kwargs: dict[str, Any] = {
            "api_token": settings.hub_api_token,
            "cache_max_age": 60,
            "base_url": settings.base_path + "/",
        }
        if settings.hub_api_url:
            kwargs["api_url"] = settings.hub_api_url
        kwargs["oauth_client_id"] = settings.hub_client_id or "service-academy"
        self.auth = HubOAuth(**kwargs)

    @property
    def cookie_name(self) -> str:
        return self.auth.cookie_name

    async def user_for_token(self, token: str) -> dict | None:
        """The hub's user model for a hub token, or None when the hub does not know it."""
        try:
            return await self.auth.user_for_token(token, sync=False)
        except Exception as exc:  # the hub is down or refused us: not this user's fault
            log.warning("could not ask the hub about a token: %s", exc)
            raise Unavailable(
                "cannot reach JupyterHub to check this token; try again in a moment"
            ) from None

    def login_redirect(self, next_url: str) -> tuple[str, str, str]:
        """(URL to send the browser to, state id, PKCE verifier) to start the OAuth dance."""
        from urllib.parse import urlencode

        verifier, challenge, method = self.auth.generate_pkce_code_challenge()
        state = self.auth.generate_state(next_url, code_verifier=verifier)
        sep = "&" if "?" in self.auth.login_url else "?"
        url = (
            self.auth.login_url
            + sep
            + urlencode(
                {"state": state, "code_challenge": challenge, "code_challenge_method": method}
            )
        )
        return url, state, verifier

    async def finish_login(self, code: str, state: str) -> tuple[str, str]:
        """Exchange the OAuth code for a hub token; (token, next url)."""
        verifier = self.auth.get_code_verifier(state)
        next_url = self.auth.get_next_url(state)
        token = await self.auth.token_for_code(code, code_verifier=verifier, sync=False)
        self.auth.clear_oauth_state(state)
        return token, next_url
