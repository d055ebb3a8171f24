"""Staff: assignment pools and picks (ResponsibleId), and the speed-to-lead notifications outbox.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadrelay.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "assignment_pools",
        sa.Column("pool", sa.String(length=200), nullable=False),
        sa.Column("turns", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pool", name=op.f("pk_assignment_pools")),
    )
    op.create_table(
        "assignments",
        sa.Column("enquiry", sa.String(length=200), nullable=False),
        sa.Column("lead_id", Id, nullable=False),
        sa.Column("pool", sa.String(length=200), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.Column("assigned_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_assignments_lead_id_leads")),
        sa.PrimaryKeyConstraint("enquiry", name=op.f("pk_assignments")),
    )
    op.create_index(op.f("ix_assignments_lead_id"), "assignments", ["lead_id"], unique=False)
    op.create_index("ix_assignments_pool_staff_id", "assignments", ["pool", "staff_id"], unique=False)
    op.create_table(
        "notifications",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("lead_id", Id, nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=400), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("opportunity_id", sa.BigInteger(), nullable=False),
        sa.Column("intake_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("created_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("sent_at", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_notifications_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("key", name=op.f("uq_notifications_key")),
    )
    op.create_index(op.f("ix_notifications_lead_id"), "notifications", ["lead_id"], unique=False)
    op.create_index(
        "ix_notifications_state_next_attempt_at", "notifications", ["state", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("assignments")
    op.drop_table("assignment_pools")
