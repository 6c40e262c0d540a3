"""Certificates: each institution's issuer profile and keys, status lists, batches, credentials.

The credential JSON is stored exactly as issued (it is what the learner downloads and what the
signature covers); the columns beside it are for finding and managing it. Private keys are stored
only encrypted (see ``academy.credentials.keys``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .base import utcnow


class IssuerProfile(SQLModel, table=True):
    """An institution as a credential issuer; ``auto_issue``: issue as soon as learners qualify."""

    __tablename__ = "issuer_profile"

    id: int | None = Field(default=None, primary_key=True)
    institution_id: int = Field(foreign_key="institution.id", unique=True)
    issuer_url: str = Field(max_length=500, description="the issuer id in credentials")
    name: str = Field(max_length=200)
    auto_issue: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class IssuerKeyRecord(SQLModel, table=True):
    """One key of an issuer's history (Multikey), with its validity period."""

    __tablename__ = "issuer_key"

    id: int | None = Field(default=None, primary_key=True)
    issuer_id: int = Field(foreign_key="issuer_profile.id", index=True)
    multikey: str = Field(max_length=100, unique=True)
    valid_from: datetime
    valid_until: datetime | None = None
    revoked_at: datetime | None = None
    encrypted_private: str = Field(sa_column=Column(Text, nullable=False))
    ledger_tx: str = Field(default="", max_length=80)


class StatusListRecord(SQLModel, table=True):
    """One Bitstring Status List of an issuer (``purpose``: revocation or suspension)."""

    __tablename__ = "status_list"
    __table_args__ = (UniqueConstraint("issuer_id", "purpose", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    issuer_id: int = Field(foreign_key="issuer_profile.id", index=True)
    purpose: str = Field(max_length=16)
    seq: int = 1
    size: int = 131072
    used: int = 0
    bits: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signed_json: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    updated_at: datetime = Field(default_factory=utcnow)


class CredentialBatch(SQLModel, table=True):
    """Credentials signed together; their Merkle root is anchored by one ledger transaction."""

    __tablename__ = "credential_batch"

    id: int | None = Field(default=None, primary_key=True)
    issuer_id: int = Field(foreign_key="issuer_profile.id", index=True)
    count: int = 0
    merkle_root: str = Field(default="", max_length=64)
    anchor_json: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    anchored: bool = False
    note: str = Field(default="", max_length=500)
    issued_by: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class CredentialRecord(SQLModel, table=True):
    """One issued certificate: the learner, the course, its status bits, its share link."""

    __tablename__ = "credential"
    __table_args__ = (
        UniqueConstraint("user_id", "cohort_id"),
        UniqueConstraint("revocation_list_id", "revocation_index"),
        UniqueConstraint("suspension_list_id", "suspension_index"),
    )

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(max_length=80, unique=True, description="the credential's urn:uuid id")
    issuer_id: int = Field(foreign_key="issuer_profile.id", index=True)
    batch_id: int | None = Field(default=None, foreign_key="credential_batch.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    course_id: int = Field(foreign_key="course.id", index=True)
    cohort_id: int = Field(foreign_key="cohort.id", index=True)
    revocation_list_id: int = Field(foreign_key="status_list.id")
    revocation_index: int
    suspension_list_id: int = Field(foreign_key="status_list.id")
    suspension_index: int
    revoked: bool = False
    suspended: bool = False
    share_token: str | None = Field(default=None, max_length=64, unique=True)
    document: str = Field(sa_column=Column(Text, nullable=False))
    issued_at: datetime = Field(default_factory=utcnow)


class LedgerRegistryRecord(SQLModel, table=True):
    """Where the academy's registry contract lives on its ledger (deployed on first use)."""

    __tablename__ = "ledger_registry"

    id: int | None = Field(default=None, primary_key=True)
    genesis_hash: str = Field(max_length=80, unique=True)
    chain_id: int
    address: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
