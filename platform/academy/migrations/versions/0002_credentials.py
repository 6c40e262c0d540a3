"""credentials: issuers, keys, status lists, batches, credentials, ledger registry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 19:15:26.097474
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_registry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("genesis_hash", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("genesis_hash"),
    )
    op.create_table(
        "issuer_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("issuer_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("auto_issue", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("institution_id"),
    )
    op.create_table(
        "credential_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("merkle_root", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("anchor_json", sa.Text(), nullable=False),
        sa.Column("anchored", sa.Boolean(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("issued_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issued_by"],
            ["user.id"],
        ),
        sa.ForeignKeyConstraint(
            ["issuer_id"],
            ["issuer_profile.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("credential_batch", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credential_batch_issuer_id"), ["issuer_id"], unique=False
        )

    op.create_table(
        "issuer_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("multikey", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("valid_from", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("valid_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("encrypted_private", sa.Text(), nullable=False),
        sa.Column("ledger_tx", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuer_id"],
            ["issuer_profile.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("multikey"),
    )
    with op.batch_alter_table("issuer_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issuer_key_issuer_id"), ["issuer_id"], unique=False)

    op.create_table(
        "status_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("bits", sa.LargeBinary(), nullable=False),
        sa.Column("signed_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuer_id"],
            ["issuer_profile.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issuer_id", "purpose", "seq"),
    )
    with op.batch_alter_table("status_list", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_status_list_issuer_id"), ["issuer_id"], unique=False)

    op.create_table(
        "credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column("revocation_list_id", sa.Integer(), nullable=False),
        sa.Column("revocation_index", sa.Integer(), nullable=False),
        sa.Column("suspension_list_id", sa.Integer(), nullable=False),
        sa.Column("suspension_index", sa.Integer(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("suspended", sa.Boolean(), nullable=False),
        sa.Column("share_token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("issued_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["credential_batch.id"],
        ),
        sa.ForeignKeyConstraint(
            ["cohort_id"],
            ["cohort.id"],
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["course.id"],
        ),
        sa.ForeignKeyConstraint(
            ["issuer_id"],
            ["issuer_profile.id"],
        ),
        sa.ForeignKeyConstraint(
            ["revocation_list_id"],
            ["status_list.id"],
        ),
        sa.ForeignKeyConstraint(
            ["suspension_list_id"],
            ["status_list.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("revocation_list_id", "revocation_index"),
        sa.UniqueConstraint("share_token"),
        sa.UniqueConstraint("suspension_list_id", "suspension_index"),
        sa.UniqueConstraint("uid"),
        sa.UniqueConstraint("user_id", "cohort_id"),
    )
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credential_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_credential_cohort_id"), ["cohort_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_credential_course_id"), ["course_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_credential_issuer_id"), ["issuer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_credential_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credential_user_id"))
        batch_op.drop_index(batch_op.f("ix_credential_issuer_id"))
        batch_op.drop_index(batch_op.f("ix_credential_course_id"))
        batch_op.drop_index(batch_op.f("ix_credential_cohort_id"))
        batch_op.drop_index(batch_op.f("ix_credential_batch_id"))

    op.drop_table("credential")
    with op.batch_alter_table("status_list", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_list_issuer_id"))

    op.drop_table("status_list")
    with op.batch_alter_table("issuer_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issuer_key_issuer_id"))

    op.drop_table("issuer_key")
    with op.batch_alter_table("credential_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credential_batch_issuer_id"))

    op.drop_table("credential_batch")
    op.drop_table("issuer_profile")
    op.drop_table("ledger_registry")
