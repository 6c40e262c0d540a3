"""Certificates over HTTP: issue (institution admin), list mine, download, share, revoke or
suspend, the public status lists and issuers' DID documents, and the verify API (no login needed).

Public endpoints (no ``Authorization``): ``GET /credentials/status/...``, ``GET
/credentials/issuers/{slug}/did.json`` (where the institution's did:web resolves), ``GET
/credentials/shared/{token}``, ``GET /credentials/contexts/v1`` (academy's JSON-LD context),
``POST /credentials/verify``.
The public page that uses them is ``academy.pages.verify``.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from ..credentials.credential import ACADEMY_CONTEXT, pinned_context_bytes
from ..credentials.jcs import MAX_DOCUMENT_BYTES, CanonicalizationError, loads
from ..db import referenced
from ..models import Cohort, Course, CredentialBatch, CredentialRecord, Institution, User, id_of
from ..services import credentials as svc
from ..services.access import Principal, require_admin_of
from ..services.errors import Forbidden, Invalid, NotFound, TooLarge, found
from ..settings import Settings
from .common import get_row, institution_by_slug
from .deps import PrincipalDep, SessionDep, StateDep
from .schemas import error_bodies

router = APIRouter(
    prefix="/credentials",
    tags=["credentials"],
    responses=error_bodies(401, 403, 404),
)


class IssueIn(BaseModel):
    cohort_id: int = Field(description="issue to the eligible learners of this cohort")
    learners: list[str] | None = Field(
        default=None, description="only these usernames (each must be eligible); default: all"
    )


class CredentialOut(BaseModel):
    id: str
    learner: str
    course: str
    cohort_id: int
    issued_at: str
    anchored: bool
    revoked: bool
    suspended: bool
    download: str
    share_url: str | None = None


class BatchOut(BaseModel):
    batch_id: int
    count: int
    anchored: bool
    merkle_root: str
    ledger: dict[str, Any] | None
    note: str
    credentials: list[CredentialOut]


class EligibleOut(BaseModel):
    learner: str
    scores: dict[str, list[float]]


class StatusIn(BaseModel):
    purpose: str = Field(description="revocation | suspension")
    value: bool = Field(True, description="true sets it; false lifts a suspension")


class PolicyIn(BaseModel):
    institution: str
    auto_issue: bool


class CheckOut(BaseModel):
    name: str
    outcome: str = Field(description="pass | fail | n/a")
    detail: str


class IssuerCheckOut(BaseModel):
    id: str | None
    known: bool | None = Field(
        description="true: an issuer academy holds, signing with one of its keys; false: "
        "academy does not know it (its name in the document is unverified)"
    )
    name: str | None = Field(description="the issuer's name as academy holds it (known only)")


class ReportOut(BaseModel):
    credential: str | None
    verdict: str = Field(
        description="valid | issuer_unknown (every check passed, but academy does not know "
        "the issuer: not valid) | revoked | suspended | invalid"
    )
    valid: bool = Field(description="true only for the verdict valid")
    issuer: IssuerCheckOut
    checks: list[CheckOut]


def _out(session: SessionDep, settings: Settings, row: CredentialRecord) -> CredentialOut:
    user = referenced(session, User, row.user_id)
    course = referenced(session, Course, row.course_id)
    batch = session.get(CredentialBatch, row.batch_id) if row.batch_id else None
    return CredentialOut(
        id=row.uid,
        learner=user.username,
        course=course.slug,
        cohort_id=row.cohort_id,
        issued_at=row.issued_at.isoformat(),
        anchored=bool(batch and batch.anchored),
        revoked=row.revoked,
        suspended=row.suspended,
        download=f"{svc.public_base(settings)}/api/credentials/{row.uid}",
        share_url=svc.share_url(settings, row.share_token) if row.share_token else None,
    )


def _cohort_admin(session: SessionDep, principal: Principal, cohort_id: int) -> Cohort:
    cohort = get_row(session, Cohort, cohort_id, "cohort")
    require_admin_of(principal, cohort.institution_id)
    return cohort


def _record(session: SessionDep, uid: str) -> CredentialRecord:
    row = session.exec(select(CredentialRecord).where(CredentialRecord.uid == uid)).first()
    return found(row, f"no credential {uid}")


def _may_read(session: SessionDep, principal: Principal, row: CredentialRecord) -> None:
    """The learner (scope learn) or an admin of the issuing institution (scope read); anyone
    else is told nothing (404)."""
    if row.user_id == principal.user_id:
        principal.require_scope("learn")
        return
    cohort = referenced(session, Cohort, row.cohort_id)
    if not principal.admin_of(cohort.institution_id):
        raise NotFound(f"no credential {row.uid}")
    principal.require_scope("read")


def _own(session: SessionDep, principal: Principal, uid: str) -> CredentialRecord:
    """My credential, to share or unshare (scope learn)."""
    row = _record(session, uid)
    principal.require_scope("learn")
    if row.user_id != principal.user_id:
        raise Forbidden("only the learner shares their credential")
    return row


@router.get("/eligible", response_model=list[EligibleOut])
def list_eligible(
    cohort_id: int, session: SessionDep, principal: PrincipalDep
) -> list[EligibleOut]:
    """Learners of a cohort who meet the course's completion rule and have no credential yet."""
    cohort = _cohort_admin(session, principal, cohort_id)
    return [
        EligibleOut(learner=u.username, scores={k: list(v) for k, v in s.items()})
        for u, s in svc.eligible(session, cohort)
    ]


@router.post("/issue", response_model=BatchOut, status_code=201, responses=error_bodies(422))
async def issue(
    body: IssueIn, session: SessionDep, principal: PrincipalDep, state: StateDep
) -> BatchOut:
    """Issue certificates to the eligible learners of a cohort, as one anchored batch."""

    def work() -> BatchOut:
        cohort = _cohort_admin(session, principal, body.cohort_id)
        found = svc.eligible(session, cohort)
        if body.learners is not None:
            wanted = set(body.learners)
            missing = wanted - {u.username for u, _ in found}
            if missing:
                raise Invalid(
                    f"not eligible (completion rule not met, or already issued): "
                    f"{', '.join(sorted(missing))}"
                )
            found = [(u, s) for u, s in found if u.username in wanted]
        institution = referenced(session, Institution, cohort.institution_id)
        batch = svc.issue_batch(
            session, state.settings, institution, [(cohort, u, s) for u, s in found],
            principal.user_id,
        )  # fmt: skip
        rows = session.exec(
            select(CredentialRecord).where(CredentialRecord.batch_id == batch.id)
        ).all()
        return BatchOut(
            batch_id=batch.id,
            count=batch.count,
            anchored=batch.anchored,
            merkle_root=batch.merkle_root,
            ledger=json.loads(batch.anchor_json) if batch.anchor_json else None,
            note=batch.note,
            credentials=[_out(session, state.settings, r) for r in rows],
        )

    return await run_in_threadpool(work)


@router.put("/policy")
def set_policy(
    body: PolicyIn, session: SessionDep, principal: PrincipalDep, state: StateDep
) -> dict:
    """Turn automatic issuing on or off for an institution."""
    institution = institution_by_slug(session, body.institution)
    require_admin_of(principal, id_of(institution))
    issuer = svc.ensure_issuer(session, state.settings, institution)
    issuer.auto_issue = body.auto_issue
    session.add(issuer)
    session.commit()
    return {"institution": institution.slug, "auto_issue": issuer.auto_issue}


@router.post("/issuers/{slug}/keys", status_code=201)
def rotate_key(slug: str, session: SessionDep, principal: PrincipalDep, state: StateDep) -> dict:
    """Rotate the institution's signing key (the old one stays valid for what it signed)."""
    institution = institution_by_slug(session, slug)
    require_admin_of(principal, id_of(institution))
    issuer = svc.ensure_issuer(session, state.settings, institution)
    row = svc.add_key(session, state.settings, issuer)
    session.commit()
    return {"multikey": row.multikey, "valid_from": row.valid_from.isoformat()}


@router.get("/mine", response_model=list[CredentialOut])
def mine(session: SessionDep, principal: PrincipalDep, state: StateDep) -> list[CredentialOut]:
    """The certificates issued to me."""
    principal.require_scope("learn")
    rows = session.exec(
        select(CredentialRecord)
        .where(CredentialRecord.user_id == principal.user_id)
        .order_by(col(CredentialRecord.id))
    ).all()
    return [_out(session, state.settings, r) for r in rows]


@router.get("/status/{slug}/{purpose}/{seq}", tags=["public"])
def status_list(
    slug: str, purpose: str, seq: int, session: SessionDep, state: StateDep
) -> JSONResponse:
    """A signed BitstringStatusListCredential (public)."""
    row = svc.own_list(session, slug, purpose, seq)
    if row is None:
        raise NotFound(f"no {purpose} status list {seq} for {slug!r}")
    doc = svc.status_list_document(session, state.settings, row)
    return JSONResponse(doc, headers={"Cache-Control": "max-age=60"})


def _issuer_document(slug: str, session: SessionDep, state: StateDep) -> JSONResponse:
    institution = institution_by_slug(session, slug)
    issuer = svc.issuer_of(session, id_of(institution))
    if issuer is None:
        raise NotFound(f"{slug!r} has not issued credentials")
    return JSONResponse(
        svc.issuer_document(session, state.settings, issuer),
        media_type="application/did+ld+json",
        headers={"Cache-Control": "max-age=60"},
    )


@router.get("/issuers/{slug}/did.json", tags=["public"])
def issuer_did_document(slug: str, session: SessionDep, state: StateDep) -> JSONResponse:
    """The institution's DID document, where its did:web resolves: every key it signed with
    (under ``assertionMethod``; ``expires`` once rotated out, ``revoked`` once compromised)
    and the ledger registry it records keys, anchors and statuses in."""
    return _issuer_document(slug, session, state)


@router.get("/issuers/{slug}", tags=["public"])
def issuer_profile(slug: str, session: SessionDep, state: StateDep) -> JSONResponse:
    """The same DID document, at the address issuers had before they were DIDs."""
    return _issuer_document(slug, session, state)


@router.get("/contexts/v1", tags=["public"])
def academy_context() -> Response:
    """Academy's JSON-LD context (the terms of its LedgerAnchorProof), byte for byte the copy
    every verifier pins for ``ACADEMY_CONTEXT``, so a JSON-LD processor that does fetch contexts
    gets the very bytes academy signs with."""
    return Response(
        pinned_context_bytes(ACADEMY_CONTEXT),
        media_type="application/ld+json",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/shared/{token}", tags=["public"])
def shared(token: str, session: SessionDep) -> JSONResponse:
    """A credential its learner chose to share (public, by the share link's token)."""
    row = session.exec(
        select(CredentialRecord).where(CredentialRecord.share_token == token)
    ).first()
    if row is None or not token:
        raise NotFound("no credential is shared under this link (the learner may have revoked it)")
    return JSONResponse(json.loads(row.document))


@router.post(
    "/verify",
    response_model=ReportOut,
    tags=["public"],
    responses=error_bodies(413, 422),
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}
    },
)
async def verify(request: Request, session: SessionDep, state: StateDep) -> ReportOut:
    """Verify a credential (public): every check with its outcome, as `academy verify` prints.

    Only what academy holds is used (its issuers' keys and status lists, its own ledger node):
    nothing is fetched from an address the credential names. A credential from an issuer academy
    does not know is never ``valid``: its verdict is ``issuer_unknown``.

    The body is read up to a size cap and its nesting depth checked before it is parsed (413 or
    422 past the bounds): parsing recurses once per level, and the endpoint is public."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_DOCUMENT_BYTES:
            raise TooLarge(f"the credential is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        document = loads(bytes(body))
    except CanonicalizationError as exc:
        raise Invalid(f"the body is not a JSON credential: {exc}") from None
    report = await run_in_threadpool(svc.verify_document, session, state.settings, document)
    return ReportOut(**report.to_json())


@router.get("/{uid}")
def download(uid: str, session: SessionDep, principal: PrincipalDep) -> JSONResponse:
    """The credential JSON, as issued (the learner's, or an admin of the issuing institution)."""
    row = _record(session, uid)
    _may_read(session, principal, row)
    name = uid.rsplit(":", 1)[-1]
    return JSONResponse(
        json.loads(row.document),
        headers={"Content-Disposition": f'attachment; filename="credential-{name}.json"'},
    )


@router.post("/{uid}/share")
def share(uid: str, session: SessionDep, principal: PrincipalDep, state: StateDep) -> dict:
    """Make (or return) the share link of my credential: anyone with it can see and verify it."""
    row = _own(session, principal, uid)
    if not row.share_token:
        row.share_token = secrets.token_urlsafe(18)
        session.add(row)
        session.commit()
    return {"share_url": svc.share_url(state.settings, row.share_token), "token": row.share_token}


@router.delete("/{uid}/share")
def unshare(uid: str, session: SessionDep, principal: PrincipalDep) -> dict:
    row = _own(session, principal, uid)
    row.share_token = None
    session.add(row)
    session.commit()
    return {"shared": False}


@router.post("/{uid}/status")
async def change_status(
    uid: str, body: StatusIn, session: SessionDep, principal: PrincipalDep, state: StateDep
) -> dict:
    """Revoke or suspend a credential (or lift a suspension): status list and ledger."""

    def work() -> dict:
        row = _record(session, uid)
        cohort = referenced(session, Cohort, row.cohort_id)
        require_admin_of(principal, cohort.institution_id)
        svc.set_status(session, state.settings, row, body.purpose, body.value)
        return {"id": row.uid, "revoked": row.revoked, "suspended": row.suspended}

    return await run_in_threadpool(work)
