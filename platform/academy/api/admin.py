"""Administration: institutions, users, roles, API tokens, institution systems, the audit log."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi import APIRouter, Query
from sqlmodel import Session, col, select

from ..db import referenced
from ..models import ApiToken, AuditEvent, Institution, Role, RoleAssignment, User, id_of, utcnow
from ..services import audit
from ..services.access import ALL_SCOPES, require_admin_of, require_platform_admin
from ..services.errors import Conflict, Forbidden, NotFound
from ..services.identity import (
    create_institution,
    ensure_user,
    grant_role,
    is_system_of,
    issue_token,
    parse_scopes,
    revoke_role,
    set_password,
    user_by_name,
)
from .common import course_by_slug, get_row, institution_by_slug
from .deps import PrincipalDep, SessionDep, StateDep, hub_accounts
from .schemas import (
    AuditOut,
    InstitutionIn,
    InstitutionOut,
    RoleIn,
    RoleOut,
    SystemIn,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    error_bodies,
)

router = APIRouter(
    tags=["admin"],
    responses=error_bodies(401, 403, 404),
)


@router.get("/institutions", response_model=list[InstitutionOut])
def list_institutions(session: SessionDep, principal: PrincipalDep) -> list[InstitutionOut]:
    """All institutions for a platform admin; otherwise those where you hold a staff role."""
    rows = session.exec(select(Institution).order_by(col(Institution.slug))).all()
    mine = principal.institutions()
    return [
        InstitutionOut(id=i.id, slug=i.slug, name=i.name)
        for i in rows
        if principal.is_platform_admin or i.id in mine
    ]


@router.post(
    "/institutions",
    response_model=InstitutionOut,
    status_code=201,
    responses=error_bodies(409),
)
def add_institution(
    body: InstitutionIn, session: SessionDep, principal: PrincipalDep
) -> InstitutionOut:
    require_platform_admin(principal)
    inst = create_institution(session, principal, body.slug, body.name)
    session.commit()
    return InstitutionOut(id=inst.id, slug=inst.slug, name=inst.name)


@router.post("/users", response_model=UserOut, status_code=201, responses=error_bodies(409))
def add_user(
    body: UserIn, session: SessionDep, principal: PrincipalDep, state: StateDep
) -> UserOut:
    """Create a user (platform admin or any institution admin); a password enables demo login."""
    principal.require_scope("admin")
    if not (
        principal.is_platform_admin
        or any(r.role == Role.institution_admin for r in principal.roles)
    ):
        raise Forbidden("only a platform or institution admin may create users")
    user, created = ensure_user(session, body.username, body.display_name, body.email)
    if not created:
        raise Conflict(f"user {body.username!r} already exists")
    if body.password:
        set_password(session, user, body.password)
    session.commit()
    hub_accounts(state, [user.username])
    return UserOut(username=user.username, display_name=user.display_name, email=user.email)


def _role_out(session: Session, r: RoleAssignment) -> RoleOut:
    from ..models import Course

    inst = session.get(Institution, r.institution_id) if r.institution_id else None
    course = session.get(Course, r.course_id) if r.course_id else None
    return RoleOut(
        id=r.id,
        role=r.role,
        institution=inst.slug if inst else None,
        course=course.slug if course else None,
    )


@router.get("/roles", response_model=list[RoleOut])
def list_roles(
    session: SessionDep, principal: PrincipalDep, institution: str = Query(..., max_length=64)
) -> list[RoleOut]:
    """Roles held at an institution (its admins)."""
    inst = institution_by_slug(session, institution)
    require_admin_of(principal, id_of(inst))
    rows = session.exec(
        select(RoleAssignment).where(RoleAssignment.institution_id == inst.id)
    ).all()
    return [_role_out(session, r) for r in rows]


@router.post("/roles", response_model=RoleOut, status_code=201, responses=error_bodies(422))
def add_role(body: RoleIn, session: SessionDep, principal: PrincipalDep) -> RoleOut:
    """Grant a role: platform_admin (platform admins only) or a role at an institution
    (its admins), optionally limited to one course."""
    user = user_by_name(session, body.username)
    inst = institution_by_slug(session, body.institution) if body.institution else None
    if body.role == Role.platform_admin or inst is None:
        require_platform_admin(principal)
    else:
        require_admin_of(principal, id_of(inst))
    if user.is_service:
        # the hub's account and institution systems hold exactly the role they were made with;
        # widening one would hand its token-holder (another institution, the hub) new reach
        raise Forbidden(f"{user.username!r} is a service account: its roles are fixed")
    course_id = course_by_slug(session, body.course).id if body.course else None
    row, _created = grant_role(session, principal, user, body.role, inst, course_id)
    session.commit()
    return _role_out(session, row)


@router.delete("/roles/{role_id}", status_code=204)
def delete_role(role_id: int, session: SessionDep, principal: PrincipalDep) -> None:
    row = get_row(session, RoleAssignment, role_id, "role")
    if row.institution_id is None:
        require_platform_admin(principal)
    elif not principal.admin_of(row.institution_id):
        raise NotFound(f"no role {role_id}")
    else:
        principal.require_scope("admin")
    revoke_role(session, principal, row)
    session.commit()


def _token_out(row: ApiToken, username: str, secret: str | None = None) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=row.scopes.split(),
        username=username,
        created_at=row.created_at,
        expires_at=row.expires_at,
        token=secret,
    )


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(session: SessionDep, principal: PrincipalDep) -> list[TokenOut]:
    """Your API tokens (never their secrets)."""
    rows = session.exec(
        select(ApiToken).where(
            ApiToken.user_id == principal.user_id, col(ApiToken.revoked_at).is_(None)
        )
    ).all()
    return [_token_out(r, principal.user.username) for r in rows]


@router.post("/tokens", response_model=TokenOut, status_code=201, responses=error_bodies(422))
def create_token(body: TokenIn, session: SessionDep, principal: PrincipalDep) -> TokenOut:
    """A personal API token with at most the scopes of the credentials you used."""
    scopes = parse_scopes(body.scopes, frozenset(principal.scopes) & ALL_SCOPES)
    user = referenced(session, User, principal.user_id)
    row, secret = issue_token(
        session,
        user,
        scopes,
        body.name,
        timedelta(days=body.expires_in_days) if body.expires_in_days else None,
    )
    session.commit()
    return _token_out(row, principal.user.username, secret)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, session: SessionDep, principal: PrincipalDep) -> None:
    row = get_row(session, ApiToken, token_id, "token")
    if row.user_id != principal.user_id and not principal.is_platform_admin:
        raise NotFound(f"no token {token_id}")
    row.revoked_at = utcnow()
    session.add(row)
    session.commit()


@router.post(
    "/institutions/{institution}/systems",
    response_model=TokenOut,
    status_code=201,
    responses=error_bodies(422),
)
def create_system(
    institution: str, body: SystemIn, session: SessionDep, principal: PrincipalDep
) -> TokenOut:
    """An institution system (e.g. a student information system): a service account holding
    the institution_admin role there, and a scoped token for it (institution admins)."""
    from ..services.identity import check_slug

    inst = institution_by_slug(session, institution)
    require_admin_of(principal, id_of(inst))
    check_slug(body.name, "system name")
    scopes = parse_scopes(
        body.scopes or ["read", "enroll"],
        frozenset({"read", "enroll", "teach", "admin"}) & principal.scopes,
    )
    user, created = ensure_user(session, f"{inst.slug}.{body.name}", f"{inst.name} {body.name}")
    if not created and not is_system_of(session, user, id_of(inst)):
        # a person, the hub, or anything holding a role elsewhere: a token for it would hand the
        # caller that account and every role it holds
        raise Conflict(
            f"user {user.username!r} already exists and is not a system of {inst.slug}; "
            "choose another system name"
        )
    user.is_service = True
    session.add(user)
    grant_role(session, principal, user, Role.institution_admin, inst)
    row, secret = issue_token(session, user, scopes, f"{inst.slug} system {body.name}")
    session.commit()
    return _token_out(row, user.username, secret)


@router.get("/audit", response_model=list[AuditOut])
def audit_log(
    session: SessionDep,
    principal: PrincipalDep,
    institution: str | None = Query(None, max_length=64),
    limit: int = Query(200, ge=1, le=1000),
) -> list[AuditOut]:
    """Changes to grades, roles and enrollments, newest first."""
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit)
    if institution:
        inst = institution_by_slug(session, institution)
        require_admin_of(principal, id_of(inst))
        query = query.where(AuditEvent.institution_id == inst.id)
    else:
        require_platform_admin(principal)
    out = []
    for e in session.exec(query).all():
        actor = session.get(User, e.actor_id) if e.actor_id else None
        out.append(
            AuditOut(
                id=e.id,
                at=e.at,
                actor=actor.username if actor else None,
                action=e.action,
                entity=e.entity,
                entity_id=e.entity_id,
                detail=json.loads(e.detail or "{}"),
            )
        )
    return out


_ = audit  # re-exported for routers that record directly
