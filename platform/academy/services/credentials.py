"""Issuing certificates inside the platform: issuer profiles and keys, the completion rule over the
gradebook, batches signed and anchored together, status changes, verification.

The cryptography and formats live in ``academy.credentials``; this module keeps their state in the
database and applies the institution's policy: an institution admin issues to the learners of a
cohort who meet the course's ``[completion]`` rule, or, with ``auto_issue`` on, academy does it
every ``ACADEMY_CREDENTIALS_AUTO_SECONDS``. All learners issued in one go form one batch: one
Merkle root, one ledger transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import threading
import uuid
from pathlib import Path
from typing import Any, overload

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ..credentials.anchoring import Anchor, anchor_batch, sign_all
from ..credentials.completion import Course as CourseRule
from ..credentials.credential import build_credential
from ..credentials.did import (
    DidError,
    IssuerDocument,
    LedgerBinding,
    did_document,
    did_web_for,
    method_id,
    parse_did_document,
)
from ..credentials.keys import IssuerKey, KeyHistory, KeyRecord, format_time
from ..credentials.ledger import LedgerError, LedgerFacts, Registry, rpc_call
from ..credentials.proofs import sign
from ..credentials.statuslist import (
    StatusList,
    random_free_index,
    status_entry,
    status_list_credential,
)
from ..credentials.verify import OnlineSources, Report, SourceError, verify_credential
from ..db import referenced
from ..models import (
    Cohort,
    Course,
    CredentialBatch,
    CredentialRecord,
    Institution,
    IssuerKeyRecord,
    IssuerProfile,
    LedgerRegistryRecord,
    StatusListRecord,
    User,
    id_of,
    utcnow,
)
from ..settings import Settings
from . import gradebook
from .errors import Invalid, NotFound

log = logging.getLogger("academy.credentials")
PURPOSES = ("revocation", "suspension")


def public_base(settings: Settings) -> str:
    origin = settings.public_url or f"http://{settings.host}:{settings.port}"
    return origin.rstrip("/") + settings.base_path


def status_url(settings: Settings, slug: str, purpose: str, seq: int) -> str:
    return f"{public_base(settings)}/api/credentials/status/{slug}/{purpose}/{seq}"


def issuer_home(settings: Settings, slug: str) -> str:
    """The folder an institution's did:web names: its DID document is ``did.json`` there."""
    return f"{public_base(settings)}/api/credentials/issuers/{slug}"


def share_url(settings: Settings, token: str) -> str:
    return f"{public_base(settings)}/verify?share={token}"


def passphrase(settings: Settings) -> bytes:
    """The key-encryption secret: the setting, or a random one kept beside (not in) the database."""
    if settings.credentials_passphrase:
        return settings.credentials_passphrase.encode()
    path = Path(settings.state_dir) / "credentials.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


# -- the ledger ------------------------------------------------------------------------------------

_registries: dict[tuple[str, str, str], Registry] = {}
_registry_lock = threading.Lock()


def registry_for(session: Session, settings: Settings) -> Registry | None:
    """The registry on the configured ledger (deployed there on first use); None: no ledger."""
    if not settings.ledger_rpc_url:
        return None
    if not settings.ledger_private_key:
        raise Invalid("ACADEMY_LEDGER_PRIVATE_KEY is empty: set the academy's ledger account")
    with _registry_lock:
        try:
            genesis = rpc_call(settings.ledger_rpc_url, "eth_getBlockByNumber", ["0x0", False])
        except LedgerError as exc:
            raise Invalid(f"the academy ledger is unreachable: {exc}") from exc
        pinned = settings.ledger_genesis.strip().lower()
        if pinned and genesis["hash"].lower() != pinned:
            raise Invalid(
                f"the ledger at {settings.ledger_rpc_url} has genesis {genesis['hash']}, not "
                f"ACADEMY_LEDGER_GENESIS {pinned}: point ACADEMY_LEDGER_RPC_URL at the academy "
                "ledger, or change the pin if the ledger was replaced on purpose"
            )
        key = (settings.database_url, settings.ledger_rpc_url, genesis["hash"])
        if key in _registries:
            return _registries[key]
        row = session.exec(
            select(LedgerRegistryRecord).where(LedgerRegistryRecord.genesis_hash == genesis["hash"])
        ).first()
        if row is None:
            reg = Registry.deploy(settings.ledger_rpc_url, settings.ledger_private_key)
            row = LedgerRegistryRecord(
                genesis_hash=genesis["hash"], chain_id=reg.w3.eth.chain_id, address=reg.address
            )
            session.add(row)
            session.commit()
        else:
            reg = Registry(settings.ledger_rpc_url, settings.ledger_private_key, row.address)
        _registries[key] = reg
        return reg


# -- issuers and keys ------------------------------------------------------------------------------


def issuer_of(session: Session, institution_id: int) -> IssuerProfile | None:
    return session.exec(
        select(IssuerProfile).where(IssuerProfile.institution_id == institution_id)
    ).first()


def ensure_issuer(session: Session, settings: Settings, institution: Institution) -> IssuerProfile:
    """The institution's issuer profile, created with its first key and status lists if new."""
    found = issuer_of(session, id_of(institution))
    if found is not None:
        return found
    issuer = IssuerProfile(
        institution_id=id_of(institution),
        issuer_url=did_web_for(issuer_home(settings, institution.slug)),
        name=institution.name,
    )
    session.add(issuer)
    session.flush()
    for purpose in PURPOSES:
        session.add(
            StatusListRecord(
                issuer_id=id_of(issuer),
                purpose=purpose,
                bits=bytes(StatusList().bits),
            )
        )
    add_key(session, settings, issuer)
    return issuer


@overload
def _utc(value: dt.datetime) -> dt.datetime: ...
@overload
def _utc(value: dt.datetime | None) -> dt.datetime | None: ...
def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.utcoffset() is None else value


def key_history(session: Session, issuer: IssuerProfile) -> KeyHistory:
    rows = session.exec(select(IssuerKeyRecord).where(IssuerKeyRecord.issuer_id == issuer.id))
    return KeyHistory(
        [
            KeyRecord(
                r.multikey,
                _utc(r.valid_from),
                _utc(r.valid_until),
                _utc(r.revoked_at),
                r.encrypted_private,
            )
            for r in rows
        ]
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def add_key(session: Session, settings: Settings, issuer: IssuerProfile) -> IssuerKeyRecord:
    """A new signing key from now on; the current one (if any) is rotated out now."""
    now = _now()
    current = session.exec(
        select(IssuerKeyRecord).where(
            IssuerKeyRecord.issuer_id == issuer.id,
            col(IssuerKeyRecord.valid_until).is_(None),
            col(IssuerKeyRecord.revoked_at).is_(None),
        )
    ).all()
    # Times are whole seconds: the old key stays valid to the end of this second, so a credential
    # it signed earlier in the same second is not read as signed after the rotation.
    retired_at = now + dt.timedelta(seconds=1)
    registry = registry_for(session, settings)
    for row in current:
        row.valid_until = retired_at
        session.add(row)
        if registry is not None:
            registry.retire_key(issuer.issuer_url, row.multikey, retired_at)
    key = IssuerKey.generate()
    row = IssuerKeyRecord(
        issuer_id=id_of(issuer),
        multikey=key.multikey,
        valid_from=now,
        encrypted_private=key.encrypt(passphrase(settings)),
    )
    if registry is not None:
        row.ledger_tx = registry.add_key(issuer.issuer_url, key.multikey, now).tx_hash
    session.add(row)
    session.flush()
    return row


def revoke_key(
    session: Session, settings: Settings, issuer: IssuerProfile, multikey: str
) -> IssuerKeyRecord:
    """Revoke a compromised key now, and start a new one. Credentials the ledger anchored before
    now stay valid; anything else signed by it no longer verifies."""
    row = session.exec(
        select(IssuerKeyRecord).where(
            IssuerKeyRecord.issuer_id == issuer.id, IssuerKeyRecord.multikey == multikey
        )
    ).first()
    if row is None:
        raise NotFound(f"key {multikey} is not one of this issuer's keys")
    registry = registry_for(session, settings)
    at = _now()
    if registry is not None:
        at = max(at, registry.head_time() + dt.timedelta(seconds=1))
        registry.revoke_key(issuer.issuer_url, multikey, at)
    row.revoked_at = at
    if row.valid_until is None or _utc(row.valid_until) > at:
        row.valid_until = at
    session.add(row)
    session.flush()
    return add_key(session, settings, issuer)


def hashing_workers(settings: Settings) -> int:
    """Processes that canonicalize a batch (``ACADEMY_CREDENTIALS_WORKERS``; 0: every core)."""
    return settings.credentials_workers or os.cpu_count() or 1


def key_method(issuer: IssuerProfile, key: IssuerKey) -> str:
    """The verification method a proof by ``key`` names: the key as a method of the issuer's
    DID (issuers from before DIDs keep naming the key's own did:key)."""
    if issuer.issuer_url.startswith("did:"):
        return method_id(issuer.issuer_url, key.multikey)
    return key.verification_method


def signing_key(session: Session, settings: Settings, issuer: IssuerProfile) -> IssuerKey:
    record = key_history(session, issuer).active(_now())
    if record is None:
        record = key_history(session, issuer).find(add_key(session, settings, issuer).multikey)
    assert record is not None and record.encrypted_private is not None  # active or just added
    return IssuerKey.decrypt(record.encrypted_private, passphrase(settings))


def ledger_bindings(session: Session) -> list[LedgerBinding]:
    """The registries academy deployed, the one it writes to now (the newest) first: issuers
    keep naming the older ones, so what was anchored there stays checkable."""
    rows = session.exec(
        select(LedgerRegistryRecord).order_by(col(LedgerRegistryRecord.id).desc())
    ).all()
    return [LedgerBinding(r.chain_id, r.genesis_hash, r.address) for r in rows]


def issuer_document(session: Session, settings: Settings, issuer: IssuerProfile) -> dict:
    """The issuer's DID document: every key it signed with (rotation as ``expires``,
    compromise as ``revoked``) under ``assertionMethod``, and the ledger registries it uses."""
    return did_document(issuer.issuer_url, key_history(session, issuer), ledger_bindings(session))


# -- status lists ----------------------------------------------------------------------------------


def _list(session: Session, issuer: IssuerProfile, purpose: str) -> StatusListRecord:
    row = session.exec(
        select(StatusListRecord)
        .where(StatusListRecord.issuer_id == issuer.id, StatusListRecord.purpose == purpose)
        .order_by(col(StatusListRecord.seq).desc())
    ).first()
    if row is None or row.used >= row.size * 3 // 4:  # keep indexes sparse (herd privacy)
        row = StatusListRecord(
            issuer_id=id_of(issuer),
            purpose=purpose,
            seq=(row.seq + 1) if row else 1,
            bits=bytes(StatusList().bits),
        )
        session.add(row)
        session.flush()
    return row


def _taken_indexes(session: Session, row: StatusListRecord) -> set[int]:
    """The indexes of ``row`` that stored credentials hold (read once per batch: a query per
    learner would make a large batch slow)."""
    column = (
        CredentialRecord.revocation_index
        if row.purpose == "revocation"
        else CredentialRecord.suspension_index
    )
    owner = (
        CredentialRecord.revocation_list_id
        if row.purpose == "revocation"
        else CredentialRecord.suspension_list_id
    )
    return set(session.exec(select(column).where(owner == row.id)).all())


def _free_index(row: StatusListRecord, taken: set[int]) -> int:
    """A random index of ``row`` not in ``taken`` (which then holds it)."""
    index = random_free_index(taken, row.size)
    taken.add(index)
    return index


def status_list_document(session: Session, settings: Settings, row: StatusListRecord) -> dict:
    """The signed BitstringStatusListCredential (re-signed only after a change)."""
    if row.signed_json:
        return json.loads(row.signed_json)
    issuer = referenced(session, IssuerProfile, row.issuer_id)
    institution = referenced(session, Institution, issuer.institution_id)
    url = status_url(settings, institution.slug, row.purpose, row.seq)
    now = format_time(_now())
    doc = status_list_credential(
        url,
        issuer.issuer_url,
        row.purpose,
        StatusList(row.size, row.bits),
        now,
    )
    key = signing_key(session, settings, issuer)
    signed = sign(doc, key, now, key_method(issuer, key))
    row.signed_json = json.dumps(signed)
    session.add(row)
    session.commit()
    return signed


def set_status(
    session: Session, settings: Settings, record: CredentialRecord, purpose: str, value: bool
) -> CredentialRecord:
    """Revoke / suspend (``value`` True) or lift a suspension; recorded on the ledger too."""
    if purpose not in PURPOSES:
        raise Invalid(f"purpose {purpose!r}: use revocation or suspension")
    if purpose == "revocation" and record.revoked and not value:
        raise Invalid("a revocation is final: issue a new credential instead")
    list_id = record.revocation_list_id if purpose == "revocation" else record.suspension_list_id
    index = record.revocation_index if purpose == "revocation" else record.suspension_index
    row = referenced(session, StatusListRecord, list_id)
    bits = StatusList(row.size, row.bits)
    bits.set(index, value)
    row.bits, row.signed_json, row.updated_at = bytes(bits.bits), "", utcnow()
    setattr(record, "revoked" if purpose == "revocation" else "suspended", value)
    session.add(row)
    session.add(record)
    registry = registry_for(session, settings)
    if registry is not None:
        issuer = referenced(session, IssuerProfile, record.issuer_id)
        institution = referenced(session, Institution, issuer.institution_id)
        url = status_url(settings, institution.slug, purpose, row.seq)
        registry.set_statuses(issuer.issuer_url, [(url, index, purpose, value)])
    session.commit()
    return record


# -- eligibility and issuing -----------------------------------------------------------------------


def course_rule(course: Course) -> CourseRule:
    data = {
        "course": {"id": course.slug, "title": course.title, "summary": course.summary,
                   "level": course.level},
        "completion": json.loads(course.completion or "{}"),
        "labs": json.loads(course.labs or "[]"),
    }  # fmt: skip
    return CourseRule.from_dict(data, f"course {course.slug}")


def eligible(session: Session, cohort: Cohort) -> list[tuple[User, dict[str, tuple[float, float]]]]:
    """Learners of ``cohort`` who meet the course's completion rule and hold no credential yet."""
    course = referenced(session, Course, cohort.course_id)
    rule = course_rule(course)
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    cells: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    for r in gradebook.rows(session, cohort):
        if r["submissions"]:
            scores.setdefault(r["student_id"], {})[r["assignment"]] = (r["score"], r["max_score"])
            cells.setdefault(r["student_id"], {})[r["assignment"]] = r["cells"]
    issued = set(
        session.exec(
            select(CredentialRecord.user_id).where(CredentialRecord.cohort_id == cohort.id)
        ).all()
    )
    out = []
    for username, labs in sorted(scores.items()):
        user = session.exec(select(User).where(User.username == username)).first()
        if user is not None and user.id not in issued and rule.completed(labs, cells[username]):
            out.append((user, labs))
    return out


def issue_batch(
    session: Session,
    settings: Settings,
    institution: Institution,
    learners: list[tuple[Cohort, User, dict[str, tuple[float, float]]]],
    actor_id: int | None,
) -> CredentialBatch:
    """Sign a credential for each (cohort, learner, lab scores) and anchor them as one batch."""
    if not learners:
        raise Invalid(
            "nobody to issue to: no learner meets the completion rule yet",
            detail={"key": "nobody_eligible"},
        )
    issuer = ensure_issuer(session, settings, institution)
    lists = {p: _list(session, issuer, p) for p in PURPOSES}
    taken = {p: _taken_indexes(session, lists[p]) for p in PURPOSES}
    drafts, rows = [], []
    base = public_base(settings)
    rules: dict[int, CourseRule] = {}  # a batch is mostly one course: read its rule once
    for cohort, user, labs in learners:
        if cohort.course_id not in rules:
            rules[cohort.course_id] = course_rule(referenced(session, Course, cohort.course_id))
        rule = rules[cohort.course_id]
        titles = dict(rule.labs)
        indexes = {p: _free_index(lists[p], taken[p]) for p in PURPOSES}
        doc = build_credential(
            issuer={"id": issuer.issuer_url, "name": issuer.name, "url": base},
            # random: a uuid5 of the issuer and username could be recomputed by anyone who
            # guesses the login, and would link a learner's certificates to each other
            subject_id=f"urn:uuid:{uuid.uuid4()}",
            identity=user.username,
            achievement={
                "id": f"{base}/api/credentials/achievements/{rule.id}",
                "name": rule.title,
                "description": rule.summary or rule.title,
                "criteria": rule.criteria(),
                "level": rule.level,
                "course": rule.id,
            },
            evidence=[
                {"name": titles[lab], "score": labs[lab][0], "max": labs[lab][1]}
                for lab, _ in rule.labs
                if lab in labs
            ],
            valid_from=format_time(_now()),
            status=[
                status_entry(
                    status_url(settings, institution.slug, p, lists[p].seq), indexes[p], p
                )
                for p in PURPOSES
            ],
        )  # fmt: skip
        drafts.append(doc)
        rows.append((cohort, user, indexes))
    created = format_time(_now())
    key = signing_key(session, settings, issuer)
    signed = sign_all(drafts, key, created, key_method(issuer, key), hashing_workers(settings))
    batch = CredentialBatch(issuer_id=id_of(issuer), count=len(signed), issued_by=actor_id)
    registry = registry_for(session, settings)
    if registry is not None:
        ident = registry.identity()

        def record(root: bytes, count: int) -> Anchor:
            tx = registry.anchor(issuer.issuer_url, root, count)
            return Anchor(ident["chainId"], ident["genesisHash"], ident["registry"], tx.tx_hash,
                          tx.block_number, tx.block_hash)  # fmt: skip

        final = anchor_batch(signed, record, created)
        anchor = next(p for p in final[0]["proof"] if p["type"] == "LedgerAnchorProof")
        batch.merkle_root, batch.anchored = anchor["merkleRoot"], True
        batch.anchor_json = json.dumps(anchor["ledger"])
    else:
        final = signed
        batch.note = "not anchored: no academy ledger configured (ACADEMY_LEDGER_RPC_URL)"
    session.add(batch)
    session.flush()
    issued_at = utcnow()
    # one multi-row INSERT for the batch: built as ORM objects, the rows cost more than signing
    session.execute(
        insert(CredentialRecord),
        [
            {
                "uid": doc["id"],
                "issuer_id": id_of(issuer),
                "batch_id": batch.id,
                "user_id": id_of(user),
                "course_id": cohort.course_id,
                "cohort_id": id_of(cohort),
                "revocation_list_id": id_of(lists["revocation"]),
                "revocation_index": indexes["revocation"],
                "suspension_list_id": id_of(lists["suspension"]),
                "suspension_index": indexes["suspension"],
                "revoked": False,
                "suspended": False,
                "share_token": None,
                "document": json.dumps(doc),
                "issued_at": issued_at,
            }
            for doc, (cohort, user, indexes) in zip(final, rows, strict=True)
        ],
    )
    for row in lists.values():
        row.used += len(final)
        session.add(row)
    session.commit()
    return batch


def auto_issue_once(settings: Settings, engine: Engine) -> int:
    """Issue, for every institution with auto_issue on, one batch to all newly eligible learners."""
    issued = 0
    with Session(engine, expire_on_commit=False) as session:
        issuers = session.exec(select(IssuerProfile).where(col(IssuerProfile.auto_issue))).all()
        for issuer in issuers:
            institution = referenced(session, Institution, issuer.institution_id)
            cohorts = session.exec(
                select(Cohort).where(Cohort.institution_id == issuer.institution_id)
            ).all()
            learners = [(c, u, s) for c in cohorts for u, s in eligible(session, c)]
            if learners:
                issue_batch(session, settings, institution, learners, None)
                issued += len(learners)
    return issued


class AutoIssuer:
    """A thread that runs :func:`auto_issue_once` every ``credentials_auto_seconds``."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings, self.engine = settings, engine
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="credentials-auto", daemon=True)

    def start(self) -> AutoIssuer:
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.stopped.wait(self.settings.credentials_auto_seconds):
            try:
                auto_issue_once(self.settings, self.engine)
            except Exception:  # one bad round must not stop later ones; it is logged
                log.exception("automatic credential issuing failed")

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(5)


# -- verifying ---------------------------------------------------------------------------------


class AcademySources(OnlineSources):
    """What academy's public page and API verify against: only what academy holds.

    Nothing is fetched from an address a credential names (a DID document, a status list):
    those addresses come from whoever wrote the document, and fetching them would let anyone make
    academy call into its own network or hold its threads on a slow server. Issuer keys and
    status lists come from academy's database; ledger evidence from academy's own node, and only
    for a registry academy deployed. Errors never repeat what a node or server answered."""

    def __init__(self, session: Session, settings: Settings) -> None:
        super().__init__(settings.ledger_rpc_url or None)
        self.session, self.settings = session, settings
        self.prefix = f"{public_base(settings)}/api/credentials/status/"

    def _issuer(self, issuer_id: str) -> IssuerProfile | None:
        return self.session.exec(
            select(IssuerProfile).where(IssuerProfile.issuer_url == issuer_id)
        ).first()

    def issuer_document(self, issuer_id: str) -> IssuerDocument | None:
        """The DID document academy serves for one of its issuers (None: not academy's)."""
        issuer = self._issuer(issuer_id)
        if issuer is None:
            return None
        try:
            return parse_did_document(
                issuer_document(self.session, self.settings, issuer), issuer_id
            )
        except DidError as exc:
            raise SourceError(f"academy's document of {issuer_id} is unusable: {exc}") from exc

    def known_issuer(self, issuer_id: str, signer: str) -> str | None:
        """The name academy holds for ``issuer_id`` when it is one of academy's issuers and
        ``signer`` one of its keys; None: academy does not know who signed this."""
        issuer = self._issuer(issuer_id)
        if issuer is None or key_history(self.session, issuer).find(signer) is None:
            return None
        return issuer.name

    def _known_registry(self, registry: str) -> bool:
        rows = self.session.exec(select(LedgerRegistryRecord)).all()
        return any(r.address.lower() == str(registry).lower() for r in rows)

    def ledger_facts(self, registry: str) -> LedgerFacts:
        if not self._known_registry(registry):
            raise LedgerError("the anchor names a ledger registry academy does not hold")
        try:
            return super().ledger_facts(registry)
        except LedgerError as exc:
            log.warning("verify: reading academy's ledger failed: %s", exc)
            raise LedgerError("academy's ledger could not be read; try again later") from None

    def trusted_genesis(self, registry: str) -> str | None:
        """ACADEMY_LEDGER_GENESIS, else the genesis academy recorded when it deployed that
        registry: a node swapped for another chain cannot vouch for academy's credentials."""
        if self.settings.ledger_genesis.strip():
            return self.settings.ledger_genesis.strip()
        rows = self.session.exec(select(LedgerRegistryRecord)).all()
        known = [r.genesis_hash for r in rows if r.address.lower() == str(registry).lower()]
        return known[0] if known else None

    def status_list(self, url: str) -> dict[str, Any]:
        if url.startswith(self.prefix):
            parts = url[len(self.prefix) :].split("/")
            if len(parts) == 3 and parts[2].isdigit():
                row = own_list(self.session, parts[0], parts[1], int(parts[2]))
                if row is not None:
                    return status_list_document(self.session, self.settings, row)
        raise SourceError(
            "this status list is not one academy holds (academy fetches nothing from the "
            "addresses a credential names; `academy verify` on the command line can)"
        )


def own_list(session: Session, slug: str, purpose: str, seq: int) -> StatusListRecord | None:
    institution = session.exec(select(Institution).where(Institution.slug == slug)).first()
    issuer = issuer_of(session, id_of(institution)) if institution else None
    if issuer is None:
        return None
    return session.exec(
        select(StatusListRecord).where(
            StatusListRecord.issuer_id == issuer.id,
            StatusListRecord.purpose == purpose,
            StatusListRecord.seq == seq,
        )
    ).first()


def verify_document(session: Session, settings: Settings, document: Any) -> Report:
    return verify_credential(document, AcademySources(session, settings))
