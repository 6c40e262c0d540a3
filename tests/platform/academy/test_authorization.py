"""Authorization matrix: every endpoint x every role x own versus someone else's resource.

Institution A and B each have an admin, an instructor and learners; the resources used are A's
cohort, assignment and learner_a's submission.  Each cell says exactly the answer expected:
staff of A may act, staff of B see nothing (404, so ids do not leak), learners see their own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any

import pytest
from academy.db import referenced, session_scope
from academy.models import Role, id_of
from academy.services.enrollment import enroll
from academy.services.identity import ensure_user, grant_role, issue_token
from httpx import Response
from sqlalchemy.engine import Engine
from sqlmodel import select

from labs.minichain.waiting import wait_until

from .builders import answer
from .conftest import BASE, SettingsFor, World, WorldOn

WHO = [
    "anonymous",
    "platform_admin",
    "admin_a",
    "instructor_a",
    "learner_a",
    "learner_a2",
    "admin_b",
    "instructor_b",
    "learner_b",
]
STAFF_A = {"platform_admin", "admin_a", "instructor_a"}
ADMINS_A = {"platform_admin", "admin_a"}
B_SIDE = {"admin_b", "instructor_b", "learner_b"}
_n = itertools.count()


def expect(
    allowed: AbstractSet[str],
    ok: int,
    denied: int = 403,
    hidden: AbstractSet[str] = frozenset(),
    **extra: int,
) -> dict[str, int]:
    """Expected status per caller: ok for ``allowed``, 404 for ``hidden``, else ``denied``."""
    table = {}
    for who in WHO:
        if who == "anonymous":
            table[who] = 401
        elif who in allowed:
            table[who] = ok
        elif who in hidden:
            table[who] = 404
        else:
            table[who] = denied
    table.update(extra)
    return table


def fresh(prefix: str) -> str:
    return f"{prefix}{next(_n)}"


def _engine(world: World) -> Engine:
    return world.engine


def _victim_enrolled(world: World) -> str:
    from academy.models import Cohort

    name = fresh("victim")
    with session_scope(_engine(world)) as s:
        user, _ = ensure_user(s, name)
        enroll(s, None, referenced(s, Cohort, world.ids["cohort_a"]), user)
    return name


def _victim_role(world: World) -> int:
    from academy.models import Institution

    with session_scope(_engine(world)) as s:
        user, _ = ensure_user(s, fresh("staff"))
        row, _ = grant_role(s, None, user, Role.instructor, s.get(Institution, 1))
        return id_of(row)


def _victim_token(world: World) -> int:
    with session_scope(_engine(world)) as s:
        user, _ = ensure_user(s, fresh("tokenowner"))
        row, _ = issue_token(s, user, ["learn"])
        return id_of(row)


Headers = dict[str, str]
Ids = dict[str, Any]  # world.ids plus the setup's notebook (bytes) and submission
Call = Callable[[World, Headers, Ids], Response]

# (name, method, path template, call, expected statuses)
MATRIX: list[tuple[str, str, str, Call, dict[str, int]]] = []


def case(method: str, path: str, expected: dict[str, int]) -> Callable[[Call], Call]:
    def register(fn: Call) -> Call:
        MATRIX.append((fn.__name__, method, path, fn, expected))
        return fn

    return register


def plain(method: str, path: str, expected: dict[str, int], url: str = "") -> None:
    """A case that only calls ``url`` (``path`` when it is the same) with no body; A's ids stand
    in for ``{assignment_id}``, ``{cohort_id}`` and ``{submission_id}``, learner_a's certificate
    for ``{uid}`` and its share link for ``{token}``."""

    def call(w: World, h: Headers, ids: Ids) -> Response:
        filled = (url or path).format(
            assignment_id=ids["assignment_a"],
            cohort_id=ids["cohort_a"],
            submission_id=ids["submission"],
            uid=ids["credential"],
            token=ids["share_token"],
        )
        return w.client.request(method, f"{BASE}{filled}", headers=h)

    MATRIX.append((f"{method} {path}", method, path, call, expected))


A_MEMBERS = STAFF_A | {"learner_a", "learner_a2"}
ANYONE = expect(set(WHO), 200)
A_SEES = expect(A_MEMBERS, 200, hidden=B_SIDE)
A_TEACHES = expect(STAFF_A, 200, hidden=B_SIDE)


plain("GET", "/me", ANYONE)


@case("PUT", "/me/language", expect(set(WHO) - {"anonymous"}, 200))
def choose_language(w: World, h: Headers, ids: Ids) -> Response:
    # the choice is the caller's own: null puts everyone back where they started
    return w.client.put(f"{BASE}/me/language", headers=h, json={"language": None})


plain("GET", "/assignments", ANYONE)
plain("GET", "/assignments/{assignment_id}", A_SEES)
plain("GET", "/assignments/{assignment_id}/release", A_SEES)
plain(
    "GET",
    "/assignments/{assignment_id}/release/{path}",
    A_SEES,
    url="/assignments/{assignment_id}/release/sha.ipynb",
)


# a lab's chain: learners get the labs released to them, those who teach the course any of its
# labs (the demo labs need no chain, so nothing starts here: see tests/courses/test_lab_chains.py)
plain(
    "GET",
    "/me/labs/{course}/{lab}/env",
    expect(set(WHO) - {"anonymous"}, 200),
    url="/me/labs/demo-hashing/sha/env",
)
plain(
    "POST",
    "/me/labs/{course}/{lab}/env",
    expect(
        STAFF_A | {"admin_b", "instructor_b"}, 200, hidden={"learner_a", "learner_a2", "learner_b"}
    ),
    url="/me/labs/demo-hashing/second/env",
)


@case(
    "POST",
    "/assignments/{assignment_id}/submissions",
    expect({"learner_a", "learner_a2"}, 202, hidden=B_SIDE),
)
def submit(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.post(
        f"{BASE}/assignments/{ids['assignment_a']}/submissions",
        headers=h,
        files={"notebook": ("sha.ipynb", ids["notebook"], "application/json")},
    )


plain("GET", "/assignments/{assignment_id}/submissions", A_SEES)


OWN_SUB = STAFF_A | {"learner_a"}
NOT_OWN = B_SIDE | {"learner_a2"}


plain("GET", "/submissions/{submission_id}", expect(OWN_SUB, 200, hidden=NOT_OWN))
plain("GET", "/submissions/{submission_id}/feedback", expect(OWN_SUB, 200, hidden=NOT_OWN))
plain("GET", "/submissions/{submission_id}/notebook", expect(OWN_SUB, 200, hidden=NOT_OWN))
plain("POST", "/submissions/{submission_id}/regrade", expect(STAFF_A, 202, hidden=NOT_OWN))
plain("GET", "/courses", ANYONE)


@case("POST", "/courses/import", expect({"platform_admin"}, 200))
def course_import(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.post(f"{BASE}/courses/import", headers=h, json={"course": "demo-hashing"})


plain("GET", "/cohorts", ANYONE)


@case("POST", "/cohorts", expect(ADMINS_A, 201))
def cohort_create(w: World, h: Headers, ids: Ids) -> Response:
    body = {"institution": "uni-a", "course": "demo-hashing", "slug": fresh("cohort-x")}
    return w.client.post(f"{BASE}/cohorts", headers=h, json=body)


plain("GET", "/cohorts/{cohort_id}", A_SEES)
plain("GET", "/cohorts/{cohort_id}/enrollments", A_TEACHES)


@case("POST", "/cohorts/{cohort_id}/enrollments", expect(ADMINS_A, 201, hidden=B_SIDE))
def enroll_one(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.post(
        f"{BASE}/cohorts/{ids['cohort_a']}/enrollments", headers=h, json={"username": fresh("new")}
    )


@case("DELETE", "/cohorts/{cohort_id}/enrollments/{username}", expect(ADMINS_A, 204, hidden=B_SIDE))
def unenroll(w: World, h: Headers, ids: Ids) -> Response:
    victim = _victim_enrolled(w)
    return w.client.delete(f"{BASE}/cohorts/{ids['cohort_a']}/enrollments/{victim}", headers=h)


@case("POST", "/cohorts/{cohort_id}/enrollments/csv", expect(ADMINS_A, 200, hidden=B_SIDE))
def enroll_csv(w: World, h: Headers, ids: Ids) -> Response:
    body = f"username\n{fresh('csv')}\n"
    return w.client.post(
        f"{BASE}/cohorts/{ids['cohort_a']}/enrollments/csv",
        headers={**h, "Content-Type": "text/csv"},
        content=body,
    )


plain("GET", "/cohorts/{cohort_id}/assignments", A_SEES)


@case("POST", "/cohorts/{cohort_id}/assignments", expect(STAFF_A, 201, hidden=B_SIDE))
def release_lab(w: World, h: Headers, ids: Ids) -> Response:
    from academy.models import Assignment

    with session_scope(_engine(w)) as s:  # each allowed caller releases anew
        for row in s.exec(select(Assignment).where(Assignment.lab == "second")).all():
            s.delete(row)
    return w.client.post(
        f"{BASE}/cohorts/{ids['cohort_a']}/assignments", headers=h, json={"lab": "second"}
    )


@case("PATCH", "/assignments/{assignment_id}", expect(STAFF_A, 200, hidden=B_SIDE))
def deadline(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.patch(
        f"{BASE}/assignments/{ids['assignment_a']}",
        headers=h,
        json={"due_at": "2099-01-01T00:00:00Z"},
    )


@case(
    "PUT", "/assignments/{assignment_id}/extensions/{username}", expect(STAFF_A, 200, hidden=B_SIDE)
)
def extension(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.put(
        f"{BASE}/assignments/{ids['assignment_a']}/extensions/learner-a2",
        headers=h,
        json={"due_at": "2099-02-01T00:00:00Z"},
    )


plain("POST", "/assignments/{assignment_id}/regrade", expect(STAFF_A, 202, hidden=B_SIDE))
plain("GET", "/cohorts/{cohort_id}/gradebook.csv", A_TEACHES)
plain("GET", "/institutions", ANYONE)


@case("POST", "/institutions", expect({"platform_admin"}, 201))
def institution_create(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.post(
        f"{BASE}/institutions", headers=h, json={"slug": fresh("inst"), "name": "x"}
    )


@case("POST", "/users", expect({"platform_admin", "admin_a", "admin_b"}, 201))
def user_create(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.post(
        f"{BASE}/users", headers=h, json={"username": fresh("u"), "password": "pw-1234"}
    )


plain("GET", "/roles", expect(ADMINS_A, 200), url="/roles?institution=uni-a")


@case("POST", "/roles", expect(ADMINS_A, 201))
def role_grant(w: World, h: Headers, ids: Ids) -> Response:
    name = fresh("grantee")
    with session_scope(_engine(w)) as s:
        ensure_user(s, name)
    return w.client.post(
        f"{BASE}/roles",
        headers=h,
        json={"username": name, "role": "instructor", "institution": "uni-a"},
    )


@case("DELETE", "/roles/{role_id}", expect(ADMINS_A, 204, denied=404))
def role_revoke(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.delete(f"{BASE}/roles/{_victim_role(w)}", headers=h)


plain("GET", "/tokens", ANYONE)


@case("POST", "/tokens", expect(set(WHO), 201))
def token_create(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.post(f"{BASE}/tokens", headers=h, json={"name": "mine", "scopes": ["learn"]})


@case("DELETE", "/tokens/{token_id}", expect({"platform_admin"}, 204, denied=404))
def token_revoke(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.delete(f"{BASE}/tokens/{_victim_token(w)}", headers=h)


@case("POST", "/institutions/{institution}/systems", expect(ADMINS_A, 201))
def system_create(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.post(
        f"{BASE}/institutions/uni-a/systems", headers=h, json={"name": fresh("sis")}
    )


plain("GET", "/audit", expect(ADMINS_A, 200), url="/audit?institution=uni-a")


@case("POST", "/internal/authenticate", expect(set(), 200))
def internal_auth(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.post(
        f"{BASE}/internal/authenticate", headers=h, json={"username": "learner-a", "password": "x"}
    )


plain(
    "POST",
    "/internal/users/{username}/token",
    expect(set(), 201),
    url="/internal/users/learner-a/token",
)


# certificates: learner_a holds one issued by A; the public endpoints answer anyone
EVERYONE = expect(set(WHO), 200, anonymous=200)


plain(
    "GET",
    "/credentials/eligible",
    expect(ADMINS_A, 200),
    url="/credentials/eligible?cohort_id={cohort_id}",
)


@case("POST", "/credentials/issue", expect(ADMINS_A, 422))  # 422: nobody named is eligible
def cred_issue(w: World, h: Headers, ids: Ids) -> Response:
    body = {"cohort_id": ids["cohort_a"], "learners": []}
    return w.client.post(f"{BASE}/credentials/issue", headers=h, json=body)


@case("PUT", "/credentials/policy", expect(ADMINS_A, 200))
def cred_policy(w: World, h: Headers, ids: Ids) -> Response:
    body = {"institution": "uni-a", "auto_issue": False}
    return w.client.put(f"{BASE}/credentials/policy", headers=h, json=body)


plain(
    "POST",
    "/credentials/issuers/{slug}/keys",
    expect(ADMINS_A, 201),
    url="/credentials/issuers/uni-a/keys",
)
plain("GET", "/credentials/mine", ANYONE)
plain(
    "GET",
    "/credentials/status/{slug}/{purpose}/{seq}",
    EVERYONE,
    url="/credentials/status/uni-a/revocation/1",
)
plain("GET", "/credentials/issuers/{slug}", EVERYONE, url="/credentials/issuers/uni-a")
plain(
    "GET",
    "/credentials/issuers/{slug}/did.json",
    EVERYONE,
    url="/credentials/issuers/uni-a/did.json",
)
plain("GET", "/credentials/shared/{token}", EVERYONE)
plain("GET", "/credentials/contexts/v1", EVERYONE)


@case("POST", "/credentials/verify", EVERYONE)
def cred_verify(w: World, h: Headers, ids: Ids) -> Response:
    return w.client.post(f"{BASE}/credentials/verify", headers=h, json=ids["credential_doc"])


plain("GET", "/credentials/{uid}", expect(ADMINS_A | {"learner_a"}, 200, hidden=set(WHO)))
plain("POST", "/credentials/{uid}/share", expect({"learner_a"}, 200))
plain("DELETE", "/credentials/{uid}/share", expect({"learner_a"}, 200))


@case("POST", "/credentials/{uid}/status", expect(ADMINS_A, 200))
def cred_status_change(w: World, h: Headers, ids: Ids) -> Response:
    body = {"purpose": "suspension", "value": False}
    return w.client.post(f"{BASE}/credentials/{ids['credential']}/status", headers=h, json=body)


def _issue_to_learner_a(world: World, ids: dict) -> None:
    import json

    from academy.models import CredentialRecord

    record = world.issue_credential("cohort_a", "learner-a", "sha", 1.0)
    with session_scope(world.engine) as s:
        row = referenced(s, CredentialRecord, id_of(record))
        row.share_token = ids["share_token"] = "matrix-share-token"
        s.add(row)
        ids["credential"] = row.uid
        ids["credential_doc"] = json.loads(row.document)


@pytest.fixture
def matrix_world(world_on: WorldOn) -> tuple[World, Ids]:
    world = world_on("sqlite")
    ids: Ids = dict(world.ids)
    released = world.client.get(
        f"{BASE}/assignments/{ids['assignment_a']}/release/sha.ipynb",
        headers=world.headers("learner_a"),
    )
    import json

    ids["notebook"] = answer(json.loads(released.content))
    r = world.client.post(
        f"{BASE}/assignments/{ids['assignment_a']}/submissions",
        headers=world.headers("learner_a"),
        files={"notebook": ("sha.ipynb", ids["notebook"], "application/json")},
    )
    ids["submission"] = r.json()["id"]
    _issue_to_learner_a(world, ids)
    wait_until(
        lambda: (
            world.client.get(
                f"{BASE}/submissions/{ids['submission']}", headers=world.headers("learner_a")
            ).json()["status"]
            == "graded"
        ),
        60,
        message="the setup submission was not graded",
    )
    return world, ids


def test_every_endpoint_is_in_the_matrix(settings_for: SettingsFor) -> None:
    from academy.app import create_app

    spec = create_app(settings_for("sqlite")).openapi()
    ours = {"learner", "teaching", "admin", "internal", "credentials"}
    routes = {
        (method.upper(), path.removeprefix(BASE))
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if set(op.get("tags", [])) & ours
    }
    covered = {(m, p) for _n, m, p, _f, _e in MATRIX}
    assert routes == covered, (
        f"missing from the matrix: {routes - covered}; stale: {covered - routes}"
    )


def test_authorization_matrix(matrix_world: tuple[World, Ids]) -> None:
    world, ids = matrix_world
    wrong = []
    for name, _method, _path, call, expected in MATRIX:
        for who in WHO:
            r = call(world, world.headers(who), ids)
            if r.status_code != expected[who]:
                wrong.append(
                    f"{name} as {who}: {r.status_code} (want {expected[who]}) {r.text[:120]}"
                )
    assert not wrong, "\n".join(wrong)


def test_token_scopes_narrow_roles(matrix_world: tuple[World, Ids]) -> None:
    """A platform admin's read-only token cannot release; a learn-only token cannot read grades
    of a cohort its owner teaches; the hub's token reaches only the internal endpoints."""
    world, ids = matrix_world
    read_only = {"Authorization": "Bearer " + world.token("platform-admin", ["read"])}
    r = world.client.post(f"{BASE}/assignments/{ids['assignment_a']}/regrade", headers=read_only)
    assert r.status_code == 403 and "'teach' scope" in r.json()["detail"]
    gradebook = f"{BASE}/cohorts/{ids['cohort_a']}/gradebook.csv"
    assert world.client.get(gradebook, headers=read_only).status_code == 200
    learn_only = {"Authorization": "Bearer " + world.token("instructor-a", ["learn"])}
    assert world.client.get(gradebook, headers=learn_only).status_code == 403
    hub = {"Authorization": "Bearer " + world.token("jupyterhub", ["hub"])}
    assert world.client.get(f"{BASE}/assignments", headers=hub).status_code == 403
    r = world.client.post(
        f"{BASE}/internal/authenticate",
        headers=hub,
        json={"username": "learner-a", "password": "nope"},
    )
    assert r.status_code == 401
    r = world.client.post(f"{BASE}/internal/users/learner-a/token", headers=hub)
    assert r.status_code == 201 and r.json()["scopes"] == ["learn"]
    learner = {"Authorization": "token " + r.json()["token"]}
    assert (
        world.client.get(f"{BASE}/assignments/{ids['assignment_a']}", headers=learner).status_code
        == 200
    )
    # a revoked token stops working at once
    tid = world.client.post(
        f"{BASE}/tokens", headers=world.headers("learner_a"), json={"scopes": ["learn"]}
    ).json()
    mine = {"Authorization": f"Bearer {tid['token']}"}
    assert world.client.get(f"{BASE}/me", headers=mine).status_code == 200
    assert (
        world.client.delete(
            f"{BASE}/tokens/{tid['id']}", headers=world.headers("learner_a")
        ).status_code
        == 204
    )
    assert world.client.get(f"{BASE}/me", headers=mine).status_code == 401
    # the credentials router checks scopes too: a read-only token is not a learner's
    own_read = {"Authorization": "Bearer " + world.token("learner-a", ["read"])}
    assert world.client.get(f"{BASE}/credentials/mine", headers=own_read).status_code == 403
    r = world.client.get(f"{BASE}/credentials/{ids['credential']}", headers=own_read)
    assert r.status_code == 403
    r = world.client.post(f"{BASE}/credentials/{ids['credential']}/share", headers=own_read)
    assert r.status_code == 403
    admin_learn = {"Authorization": "Bearer " + world.token("admin-a", ["learn"])}
    r = world.client.get(f"{BASE}/credentials/{ids['credential']}", headers=admin_learn)
    assert r.status_code == 403
    r = world.client.put(
        f"{BASE}/credentials/policy",
        headers=admin_learn,
        json={"institution": "uni-a", "auto_issue": True},
    )
    assert r.status_code == 403
    # a learner cannot mint a token with more scopes than the one it uses
    r = world.client.post(f"{BASE}/tokens", headers=learner, json={"scopes": ["admin"]})
    assert r.status_code == 422
