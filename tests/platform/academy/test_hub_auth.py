"""Behind JupyterHub: academy tokens never need the hub; a hub token while the hub is down gets
one clear 503 line; the browser login starts the hub's OAuth flow with PKCE and a state cookie."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.platform.appserver import free_port

from .conftest import BASE, SettingsFor, WorldOn


def test_without_the_hub_academy_tokens_work_and_hub_tokens_get_503(world_on: WorldOn) -> None:
    dead_hub = f"http://127.0.0.1:{free_port()}/hub/api"
    world = world_on(
        "sqlite", grade_workers=0, hub_api_token="secret-of-the-service", hub_api_url=dead_hub
    )
    assert world.client.get(f"{BASE}/me", headers=world.headers("learner_a")).status_code == 200
    r = world.client.get(f"{BASE}/me", headers={"Authorization": "token some-hub-token"})
    assert r.status_code == 503 and "cannot reach JupyterHub" in r.json()["detail"]
    r = world.client.get(f"{BASE}/me", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]

    login = world.client.get(
        "/services/academy/login?next=/services/academy/", follow_redirects=False
    )
    assert login.status_code == 302
    target = urlsplit(login.headers["location"])
    query = parse_qs(target.query)
    assert target.path == "/hub/api/oauth2/authorize"
    assert query["redirect_uri"] == ["/services/academy/oauth_callback"]
    assert query["code_challenge_method"] == ["S256"] and query["state"][0]
    assert query["state"][0] in login.headers["set-cookie"]
    # a callback whose state does not match the cookie is refused
    r = world.client.get(
        "/services/academy/oauth_callback?code=x&state=forged", follow_redirects=False
    )
    assert r.status_code == 400 and "state" in r.json()["detail"]


def test_demo_seed_is_idempotent_and_its_logins_work(settings_for: SettingsFor) -> None:
    from academy.app import create_app
    from fastapi.testclient import TestClient

    settings = settings_for(
        "sqlite", grade_workers=0, seed_demo=True, service_token="aca_hub-test-secret"
    )
    for _ in range(2):  # the second start must change nothing
        with TestClient(create_app(settings)) as client:
            hub = {"Authorization": "Bearer aca_hub-test-secret"}
            ok = client.post(
                f"{BASE}/internal/authenticate",
                headers=hub,
                json={"username": "learner1", "password": "learner1-demo"},
            )
            assert ok.status_code == 200 and ok.json() == {"name": "learner1", "admin": False}
            admin = client.post(
                f"{BASE}/internal/authenticate",
                headers=hub,
                json={"username": "admin", "password": "admin-demo"},
            )
            assert admin.json() == {"name": "admin", "admin": True}
            bad = client.post(
                f"{BASE}/internal/authenticate",
                headers=hub,
                json={"username": "learner1", "password": "learner2-demo"},
            )
            assert bad.status_code == 401
            token = client.post(f"{BASE}/internal/users/learner1/token", headers=hub).json()[
                "token"
            ]
            mine = client.get(
                f"{BASE}/assignments", headers={"Authorization": f"Bearer {token}"}
            ).json()
            assert [a["lab"] for a in mine] == ["sha", "second"]


def test_a_service_token_without_academys_prefix_is_refused_at_start(tmp_path: Path) -> None:
    """Without the prefix academy would ask the hub whose token it is, and refuse every login."""
    from academy.settings import Settings

    with pytest.raises(ValueError, match="ACADEMY_SERVICE_TOKEN must start with 'aca_'"):
        Settings(state_dir=tmp_path, service_token="0123abcd")
    assert Settings(state_dir=tmp_path, service_token="aca_x").service_token == "aca_x"


def _hub_that_knows(world_on: WorldOn, models: dict[str, dict]) -> Any:
    """A world whose hub answers for the tokens in ``models`` (token -> the hub's user model)."""
    world = world_on("sqlite", grade_workers=0, hub_api_token="secret-of-the-service")
    hub = world.client.app.state.academy.hub

    async def user_for_token(token: str) -> dict | None:
        return models.get(token)

    hub.user_for_token = user_for_token
    return world


def test_a_hub_token_not_granted_access_to_academy_is_refused(world_on: WorldOn) -> None:
    """Finding 5: the hub knows tokens that were never meant for academy. The OAuth token a
    learner's server gets when an admin opens it, or a plain API token, is refused."""
    world = _hub_that_knows(
        world_on,
        {
            # what learner-a's server gets from the hub when admin-a opens it
            "captured": {
                "name": "admin-a",
                "scopes": ["access:servers!server=learner-a/", "read:users:name!user=admin-a"],
            },
            "name-only": {"name": "learner-a", "scopes": ["read:users:name!user=learner-a"]},
            "other-service": {"name": "admin-a", "scopes": ["access:services!service=grafana"]},
        },
    )
    for token in ("captured", "name-only", "other-service"):
        r = world.client.get(f"{BASE}/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (token, r.text)
        assert "access:services!service=academy" in r.json()["detail"]
        # nor does the same token count as a browser session
        world.client.cookies.set(world.client.app.state.academy.hub.cookie_name, token)
        r = world.client.get(f"{BASE}/me")
        world.client.cookies.clear()
        assert r.status_code == 401, (token, r.text)


def test_a_hub_token_gets_the_academy_scopes_its_hub_scopes_imply(world_on: WorldOn) -> None:
    """A token granted access to academy works; as a Bearer token (a learner's server's own, or
    one made at the hub) it carries ``learn`` only, whatever its owner's roles; academy's own
    OAuth token, in its cookie, carries every scope within the roles."""
    access = "access:services!service=academy"
    world = _hub_that_knows(
        world_on,
        {
            "server-of-learner": {
                "name": "learner-a",
                "scopes": [
                    "access:servers!server=learner-a/",
                    access,
                    "users:activity!user=learner-a",
                ],
            },
            "server-of-admin": {
                "name": "admin-a",
                "scopes": [access, "users:activity!user=admin-a"],
            },
            "every-service": {"name": "admin-a", "scopes": ["access:services"]},
            "academy-oauth": {
                "name": "admin-a",
                "scopes": [access, "read:users:name!user=admin-a"],
            },
        },
    )
    bearer = {t: {"Authorization": f"Bearer {t}"} for t in ("server-of-learner", "server-of-admin")}
    r = world.client.get(f"{BASE}/me", headers=bearer["server-of-learner"])
    assert r.status_code == 200 and r.json()["username"] == "learner-a", r.text
    assert world.client.get(f"{BASE}/assignments", headers=bearer["server-of-learner"]).is_success
    for token in ("server-of-admin", "every-service"):
        head = {"Authorization": f"Bearer {token}"}
        assert world.client.get(f"{BASE}/me", headers=head).status_code == 200
        r = world.client.get(f"{BASE}/audit?institution=uni-a", headers=head)
        assert r.status_code == 403 and "'admin' scope" in r.json()["detail"], r.text
    world.client.cookies.set(world.client.app.state.academy.hub.cookie_name, "academy-oauth")
    r = world.client.get(f"{BASE}/audit?institution=uni-a")
    assert r.status_code == 200, r.text
