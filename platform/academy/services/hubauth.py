"""Users signed in at JupyterHub: their hub tokens and the HubOAuth browser cookie.

jupyterhub.services.auth.HubOAuth does the talking to the hub (who owns this token, the OAuth
code exchange, PKCE) and caches answers; academy only maps the hub user name to its own user row.
Roles never come from the hub: they live in academy's tables.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
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

    @property
    def access_scopes(self) -> set[str]:
        """The hub scopes that let a token reach academy: ``access:services!service=academy``.

        A hub-managed academy learns its service name from the hub's environment; one the hub
        does not start (``deploy/``) goes by its OAuth client id, ``service-<name>``.
        """
        if self.auth.access_scopes:
            return set(self.auth.access_scopes)
        name = self.auth.oauth_client_id.removeprefix("service-")
        return {f"access:services!service={name}"}

    def grants_access(self, model: dict) -> bool:
        """The token behind ``model`` (the hub's answer for it) was granted access to academy.

        The hub knows many tokens a user never meant for academy: the OAuth token a learner's
        server gets when someone opens it, or an API token with no more than
        ``read:users:name!user``. Only a token whose scopes include access to academy (or to
        every service) is academy's to accept.
        """
        from jupyterhub.services.auth import check_scopes

        try:
            return bool(check_scopes(self.access_scopes, set(model.get("scopes") or ())))
        except ValueError:  # a scope the hub's own parser refuses grants nothing
            return False

    async def user_for_token(self, token: str) -> dict | None:
        """The hub's user model for a hub token, or None when the hub does not know it."""
        try:
            return await self.auth.user_for_token(token, sync=False)
        except Exception as exc:  # the hub is down or refused us: not this user's fault
            log.warning("could not ask the hub about a token: %s", exc)
            raise Unavailable(
                "cannot reach JupyterHub to check this token; try again in a moment"
            ) from None

    def add_users(self, names: Iterable[str], chunk: int = 50, quiet: bool = False) -> int | None:
        """Create the hub accounts of academy users ahead of their first login; how many were new
        (None: the hub could not be reached).

        A first login that finds no account makes the hub create the user, its roles and its
        server row (several commits) while the learner waits; enrolling is when academy learns
        of a learner, so it creates the account then. Names go in chunks so the hub's event loop
        serves logins in between. Best effort: a hub that cannot be reached only means those
        accounts are created at first login, as before, so this logs and never raises.
        """
        import httpx

        todo = sorted(set(names))
        created = 0
        url = self.auth.api_url.rstrip("/") + "/users"
        headers = {"Authorization": f"token {self.auth.api_token}"}
        try:
            with httpx.Client(timeout=30.0, headers=headers) as http:
                if len(todo) > chunk:  # many (academy's start): ask only for the missing ones
                    todo = sorted(set(todo) - _hub_names(http, url))
                for i in range(0, len(todo), chunk):
                    reply = http.post(url, json={"usernames": todo[i : i + chunk]})
                    if reply.status_code == 201:
                        created += len(reply.json())
                    elif reply.status_code != 409:  # 409: every one of them exists already
                        log.warning(
                            "hub did not create users (%s): %s", reply.status_code, reply.text[:200]
                        )
                        break
        except httpx.HTTPError as exc:
            (log.debug if quiet else log.warning)("could not create hub accounts now: %s", exc)
            return None
        return created

    def add_users_in_background(self, names: list[str], tries: int = 60) -> threading.Thread:
        """``add_users`` from a thread that waits for the hub (academy starts before the hub
        answers): at start, every existing user gets an account made while nobody waits."""

        def run() -> None:
            for _ in range(tries):
                if self.add_users(names, quiet=True) is not None:
                    return
                time.sleep(2.0)

        thread = threading.Thread(target=run, name="hub-accounts", daemon=True)
        thread.start()
        return thread

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


def _hub_names(http: Any, url: str, page: int = 200) -> set[str]:
    """Every user name the hub has (its user list, page by page)."""
    names: set[str] = set()
    while True:
        reply = http.get(url, params={"offset": len(names), "limit": page})
        reply.raise_for_status()
        batch = [u["name"] for u in reply.json()]
        names.update(batch)
        if len(batch) < page:
            return names
