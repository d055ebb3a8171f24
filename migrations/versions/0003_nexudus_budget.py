"""The shared Nexudus request budget per account, and the index the dispatcher reads.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 02:42:10.332086
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadrelay.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nexudus_accounts",
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("next_request_at", sa.Float(), nullable=False),
        sa.Column("next_write_at", sa.Float(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False),
        sa.Column("last_sent_at", sa.Float(), nullable=False),
        sa.Column("updated_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_nexudus_accounts")),
    )
    op.create_table(
        "nexudus_usage",
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("writes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("account", "minute", name=op.f("pk_nexudus_usage")),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_leads_account_state_next_attempt_at", ["account", "state", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_account_state_next_attempt_at")

    op.drop_table("nexudus_usage")
    op.drop_table("nexudus_accounts")
