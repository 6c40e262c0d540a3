"""Roles never cross their institution: no API call creates, reuses or rescopes an account beyond
the caller's reach (issue 21, finding 2)."""

from __future__ import annotations

import pytest
from academy.db import session_scope
from academy.models import Role, RoleAssignment, User
from academy.services.errors import Unauthorized
from academy.services.identity import ensure_user, grant_role
from sqlmodel import select

from .conftest import BASE, World, WorldOn


@pytest.fixture
def world(world_on: WorldOn) -> World:
    return world_on("sqlite", grade_workers=0)


def test_a_system_account_never_takes_over_an_existing_user(world) -> None:
    """An institution admin names a "system" after a platform admin's login: refused, and that
    user keeps exactly what it had."""
    with session_scope(world.engine) as s:
        boss, _ = ensure_user(s, "uni-a.boss")
        grant_role(s, None, boss, Role.platform_admin, None)
    r = world.client.post(
        f"{BASE}/institutions/uni-a/systems",
        headers=world.headers("admin_a"),
        json={"name": "boss"},
    )
    assert r.status_code == 409, r.text
    assert "token" not in r.json()
    with session_scope(world.engine) as s:
        boss = s.exec(select(User).where(User.username == "uni-a.boss")).one()
        roles = s.exec(select(RoleAssignment).where(RoleAssignment.user_id == boss.id)).all()
        assert not boss.is_service
        assert [r.role for r in roles] == [Role.platform_admin]


def test_a_person_of_the_same_name_is_not_reused(world) -> None:
    with session_scope(world.engine) as s:
        ensure_user(s, "uni-a.jo")  # an ordinary person whose login happens to look like that
    r = world.client.post(
        f"{BASE}/institutions/uni-a/systems", headers=world.headers("admin_a"), json={"name": "jo"}
    )
    assert r.status_code == 409, r.text


def test_the_institution_s_own_system_may_get_a_new_token(world) -> None:
    for _ in range(2):
        r = world.client.post(
            f"{BASE}/institutions/uni-a/systems",
            headers=world.headers("admin_a"),
            json={"name": "sis"},
        )
        assert r.status_code == 201, r.text
    token = {"Authorization": f"Bearer {r.json()['token']}"}
    assert world.client.get(f"{BASE}/roles?institution=uni-a", headers=token).status_code == 403
    assert (
        world.client.get(f"{BASE}/cohorts/{world.ids['cohort_a']}", headers=token).status_code
        == 200
    )
    assert (
        world.client.get(f"{BASE}/cohorts/{world.ids['cohort_b']}", headers=token).status_code
        == 404
    )


def test_a_system_token_has_no_scope_its_creator_lacks(world) -> None:
    admin_only = {"Authorization": "Bearer " + world.token("admin-a", ["admin"])}
    r = world.client.post(
        f"{BASE}/institutions/uni-a/systems",
        headers=admin_only,
        json={"name": "grader", "scopes": ["teach"]},
    )
    assert r.status_code == 422 and "teach" in r.json()["detail"], r.text


def test_service_accounts_get_no_new_roles(world) -> None:
    """Admin A cannot widen Institution B's system (or the hub's account) into A."""
    r = world.client.post(
        f"{BASE}/institutions/uni-b/systems", headers=world.headers("admin_b"), json={"name": "sis"}
    )
    assert r.status_code == 201, r.text
    r = world.client.post(
        f"{BASE}/roles",
        headers=world.headers("admin_a"),
        json={"username": "uni-b.sis", "role": "institution_admin", "institution": "uni-a"},
    )
    assert r.status_code == 403, r.text
    with session_scope(world.engine) as s:
        sis = s.exec(select(User).where(User.username == "uni-b.sis")).one()
        roles = s.exec(select(RoleAssignment).where(RoleAssignment.user_id == sis.id)).all()
        assert {(r.role, r.institution_id) for r in roles} == {
            (Role.institution_admin, world.ids["cohort_b"])  # institution ids match cohort ids here
        }


def test_a_hub_user_named_like_a_system_is_not_that_system(world) -> None:
    from academy.api.deps import _hub_user

    r = world.client.post(
        f"{BASE}/institutions/uni-a/systems", headers=world.headers("admin_a"), json={"name": "sis"}
    )
    assert r.status_code == 201
    state = world.client.app.state.academy
    with pytest.raises(Unauthorized):
        _hub_user(state, {"name": "uni-a.sis"}, "hub-token")
    assert _hub_user(state, {"name": "learner-a"}, "hub-token").user.username == "learner-a"


# -- tokens and logins (finding 7) ---------------------------------------------------------------


def test_a_rotated_service_token_is_revoked(world) -> None:
    from academy.services.identity import register_service_token
    from academy.services.security import new_token

    old, new = new_token(), new_token()
    with session_scope(world.engine) as s:
        register_service_token(s, old)
    hub_old = {"Authorization": f"Bearer {old}"}
    path = f"{BASE}/internal/users/learner-a/token"
    assert world.client.post(path, headers=hub_old).status_code == 201
    with session_scope(world.engine) as s:
        register_service_token(s, new)  # academy restarted with ACADEMY_SERVICE_TOKEN rotated
    assert world.client.post(path, headers=hub_old).status_code == 401
    assert world.client.post(path, headers={"Authorization": f"Bearer {new}"}).status_code == 201


def test_a_new_learner_token_revokes_the_earlier_ones(world) -> None:
    hub = {"Authorization": "Bearer " + world.token("jupyterhub", ["hub"])}
    path = f"{BASE}/internal/users/learner-a/token"
    first = world.client.post(path, headers=hub).json()["token"]
    assert (
        world.client.get(f"{BASE}/me", headers={"Authorization": f"Bearer {first}"}).status_code
        == 200
    )
    second = world.client.post(path, headers=hub).json()["token"]
    assert (
        world.client.get(f"{BASE}/me", headers={"Authorization": f"Bearer {first}"}).status_code
        == 401
    )
    assert (
        world.client.get(f"{BASE}/me", headers={"Authorization": f"Bearer {second}"}).status_code
        == 200
    )
    # other tokens of the learner (made by hand) are not touched
    assert world.client.get(f"{BASE}/me", headers=world.headers("learner_a")).status_code == 200


def test_an_unknown_user_costs_the_same_password_hash_as_a_wrong_password(
    world, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting the scrypt calls, not the clock: an unknown name, a service account and a user
    without a password pay one full hash, like a wrong password."""
    from academy.services import security
    from academy.services.identity import check_password, set_password

    calls: list[int] = []
    real = security._scrypt
    monkeypatch.setattr(security, "_scrypt", lambda *a: calls.append(1) or real(*a))
    with session_scope(world.engine) as s:
        set_password(s, s.exec(select(User).where(User.username == "learner-a")).one(), "pw-right")
    r = world.client.post(
        f"{BASE}/institutions/uni-a/systems", headers=world.headers("admin_a"), json={"name": "sis"}
    )
    assert r.status_code == 201
    calls.clear()
    with session_scope(world.engine) as s:
        for name in ("learner-a", "nobody-here", "uni-a.sis", "learner-b"):
            before = len(calls)
            assert check_password(s, name, "pw-wrong") is None
            assert len(calls) - before == 1, name
