"""Initial ledger: leads, dedupe keys, delivery attempts, dead letters, audit log, coworker cache.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 01:56:25.386797
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import leadrelay.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("result", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)

    op.create_table(
        "coworker_cache",
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("coworker_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", "email", name=op.f("pk_coworker_cache")),
    )
    op.create_table(
        "leads",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("intake_key", sa.String(length=400), nullable=False),
        sa.Column("received_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=True),
        sa.Column("raw_body", sa.LargeBinary(), nullable=True),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("raw_meta", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_changed_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("lead", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("identity", sa.String(length=320), nullable=True),
        sa.Column("location", sa.String(length=100), nullable=True),
        sa.Column("duplicate_of", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("enqueued_at", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("account", sa.String(length=100), nullable=True),
        sa.Column("coworker_id", sa.BigInteger(), nullable=True),
        sa.Column("opportunity_id", sa.BigInteger(), nullable=True),
        sa.Column("opportunity_name", sa.String(length=300), nullable=True),
        sa.Column("delivered_at", leadrelay.db.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["duplicate_of"], ["leads.id"], name=op.f("fk_leads_duplicate_of_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint("intake_key", name=op.f("uq_leads_intake_key")),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index("ix_leads_channel_external_id", ["channel", "external_id"], unique=False)
        batch_op.create_index("ix_leads_identity", ["identity"], unique=False)
        batch_op.create_index("ix_leads_received_at", ["received_at"], unique=False)
        batch_op.create_index("ix_leads_state_next_attempt_at", ["state", "next_attempt_at"], unique=False)

    op.create_table(
        "dead_letters",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("lead_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("resolved_at", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_dead_letters_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dead_letters_lead_id"), ["lead_id"], unique=False)
        batch_op.create_index("ix_dead_letters_status_created_at", ["status", "created_at"], unique=False)
        batch_op.create_index(
            "uq_dead_letters_open_lead",
            ["lead_id"],
            unique=True,
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        )

    op.create_table(
        "dedupe_keys",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("lead_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_dedupe_keys_lead_id_leads")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_dedupe_keys")),
    )
    with op.batch_alter_table("dedupe_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dedupe_keys_lead_id"), ["lead_id"], unique=False)

    op.create_table(
        "delivery_attempts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("lead_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("started_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("finished_at", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("call", sa.String(length=40), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_delivery_attempts_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_attempts_lead_id"), ["lead_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_attempts_lead_id"))

    op.drop_table("delivery_attempts")
    with op.batch_alter_table("dedupe_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dedupe_keys_lead_id"))

    op.drop_table("dedupe_keys")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_dead_letters_open_lead",
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        )
        batch_op.drop_index("ix_dead_letters_status_created_at")
        batch_op.drop_index(batch_op.f("ix_dead_letters_lead_id"))

    op.drop_table("dead_letters")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_state_next_attempt_at")
        batch_op.drop_index("ix_leads_received_at")
        batch_op.drop_index("ix_leads_identity")
        batch_op.drop_index("ix_leads_channel_external_id")

    op.drop_table("leads")
    op.drop_table("coworker_cache")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_at")

    op.drop_table("audit_log")
