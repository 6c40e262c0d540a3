"""Users, roles and API tokens: creating them, and finding the principal behind a token."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from ..models import ApiToken, Institution, Role, RoleAssignment, User, id_of, utcnow
from . import audit
from .access import ALL_SCOPES, SCOPES, Principal, roles_of
from .errors import Conflict, Invalid, Unauthorized, found
from .security import (
    burn_password_check,
    hash_password,
    new_token,
    token_hash,
    verify_password,
)

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,127}$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_LAST_USED_EVERY = timedelta(minutes=1)


def check_username(username: str) -> str:
    """JupyterHub-compatible names: lower case letters, digits and . _ @ - (max 128)."""
    if not USERNAME_RE.match(username):
        raise Invalid(
            f"username {username!r} is not allowed: use lower-case letters, digits and . _ @ - "
            "(start with a letter or digit, at most 128 characters)"
        )
    return username


def check_slug(slug: str, what: str = "slug") -> str:
    if not SLUG_RE.match(slug):
        raise Invalid(f"{what} {slug!r}: use lower-case letters, digits and - (at most 64)")
    return slug


def user_by_name(session: Session, username: str) -> User:
    row = session.exec(select(User).where(User.username == username)).first()
    return found(row, f"no user {username!r}")


def ensure_user(
    session: Session, username: str, display_name: str = "", email: str = ""
) -> tuple[User, bool]:
    """The user of that name, created when missing; (user, created)."""
    check_username(username)
    user = session.exec(select(User).where(User.username == username)).first()
    if user is not None:
        return user, False
    user = User(username=username, display_name=display_name or username, email=email)
    session.add(user)
    session.flush()
    return user, True


def is_system_of(session: Session, user: User, institution_id: int) -> bool:
    """Whether ``user`` is an institution system of that institution and nothing else: a service
    account whose only roles are institution_admin there."""
    if not user.is_service:
        return False
    roles = roles_of(session, id_of(user))
    return all(
        r.role == Role.institution_admin
        and r.institution_id == institution_id
        and r.course_id is None
        for r in roles
    ) and bool(roles)


def set_password(session: Session, user: User, password: str) -> None:
    if len(password) < 4:
        raise Invalid("a password needs at least 4 characters")
    user.password_hash = hash_password(password)
    session.add(user)


def check_password(session: Session, username: str, password: str) -> User | None:
    """The user when the password matches the embedded demo login's stored hash."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or user.is_service or not user.password_hash:
        burn_password_check(password)  # as slow as a wrong password: names do not leak
        return None
    return user if verify_password(password, user.password_hash, user.username) else None


def parse_scopes(scopes: list[str] | None, allowed: frozenset[str] = ALL_SCOPES) -> list[str]:
    chosen = sorted(set(scopes or allowed))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise Invalid(f"unknown scope(s) {', '.join(unknown)}: choose from {', '.join(SCOPES)}")
    beyond = [s for s in chosen if s not in allowed]
    if beyond:
        raise Invalid(f"you may not grant scope(s) {', '.join(beyond)}")
    return chosen


def issue_token(
    session: Session,
    user: User,
    scopes: list[str],
    name: str = "",
    expires_in: timedelta | None = None,
    token: str | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; the secret is returned once and only its hash is kept."""
    secret = token or new_token()
    row = ApiToken(
        user_id=id_of(user),
        name=name,
        token_hash=token_hash(secret),
        prefix=secret[:8],
        scopes=" ".join(sorted(set(scopes))),
        expires_at=utcnow() + expires_in if expires_in else None,
    )
    session.add(row)
    session.flush()
    return row, secret


def principal_for_token(session: Session, secret: str) -> Principal | None:
    """The principal of an academy API token, or None when it is unknown."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash(secret))).first()
    if row is None:
        return None
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthorized("this API token was revoked; ask for a new one")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("this API token has expired; ask for a new one")
    user = session.get(User, row.user_id)
    if user is None:
        return None
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_EVERY:
        session.exec(update(ApiToken).where(col(ApiToken.id) == row.id).values(last_used_at=now))
        session.commit()
    return Principal(
        user=user,
        roles=roles_of(session, id_of(user)),
        scopes=frozenset(row.scopes.split()),
        token_id=row.id,
        via="token",
    )


def principal_for_user(
    session: Session, user: User, via: str, scopes: frozenset[str] = ALL_SCOPES
) -> Principal:
    """A person signed in through the hub: the scopes their hub token implies (every scope for
    academy's own sign-in), limited by the roles they hold."""
    return Principal(
        user=user,
        roles=roles_of(session, id_of(user)),
        scopes=scopes,
        via=via,
    )


def register_service_token(session: Session, secret: str) -> None:
    """Make the hub's configured token valid (scope ``hub``) for the service user ``jupyterhub``."""
    user, _ = ensure_user(session, "jupyterhub", "JupyterHub")
    user.is_service = True
    session.add(user)
    existing = session.exec(
        select(ApiToken).where(ApiToken.token_hash == token_hash(secret))
    ).first()
    if existing is None:
        issue_token(session, user, ["hub"], name="hub service token", token=secret)
    # a rotated ACADEMY_SERVICE_TOKEN replaces the old one: the old secret stops working
    revoke_tokens(session, user, "hub service token", keep=token_hash(secret))


def revoke_tokens(session: Session, user: User, name: str, keep: str | None = None) -> int:
    """Revoke ``user``'s live tokens called ``name`` (all but the one hashed ``keep``)."""
    rows = session.exec(
        select(ApiToken).where(
            ApiToken.user_id == user.id,
            ApiToken.name == name,
            col(ApiToken.revoked_at).is_(None),
        )
    ).all()
    now = utcnow()
    count = 0
    for row in rows:
        if row.token_hash != keep:
            row.revoked_at = now
            session.add(row)
            count += 1
    return count


def grant_role(
    session: Session,
    actor: Principal | None,
    user: User,
    role: Role,
    institution: Institution | None,
    course_id: int | None = None,
) -> tuple[RoleAssignment, bool]:
    """Give ``user`` a role in a scope (idempotent); audited."""
    if role != Role.platform_admin and institution is None:
        raise Invalid(f"role {role.value} needs an institution")
    if role == Role.platform_admin and institution is not None:
        raise Invalid("platform_admin is platform-wide: give no institution")
    inst_id = institution.id if institution else None
    found = session.exec(
        select(RoleAssignment).where(
            RoleAssignment.user_id == user.id,
            RoleAssignment.role == role,
            RoleAssignment.institution_id == inst_id,
            RoleAssignment.course_id == course_id,
        )
    ).first()
    if found is not None:
        return found, False
    row = RoleAssignment(
        user_id=id_of(user), role=role, institution_id=inst_id, course_id=course_id
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "role.grant",
        "role_assignment",
        row.id,
        inst_id,
        user=user.username,
        role=role.value,
        course_id=course_id,
    )
    return row, True


def revoke_role(session: Session, actor: Principal, row: RoleAssignment) -> None:
    user = session.get(User, row.user_id)
    audit.record(
        session,
        actor,
        "role.revoke",
        "role_assignment",
        row.id,
        row.institution_id,
        user=user.username if user else None,
        role=row.role,
        course_id=row.course_id,
    )
    session.delete(row)


def create_institution(
    session: Session, actor: Principal | None, slug: str, name: str
) -> Institution:
    check_slug(slug, "institution slug")
    if session.exec(select(Institution).where(Institution.slug == slug)).first():
        raise Conflict(f"institution {slug!r} already exists")
    inst = Institution(slug=slug, name=name or slug)
    session.add(inst)
    session.flush()
    audit.record(session, actor, "institution.create", "institution", inst.id, inst.id, slug=slug)
    return inst
