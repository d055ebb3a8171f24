"""Mailboxes: UIDVALIDITY, last UID and the poll lease per configured inbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 02:36:30.504859
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadrelay.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mailboxes",
        sa.Column("inbox", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=600), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("polled_at", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("inbox", name=op.f("pk_mailboxes")),
    )


def downgrade() -> None:
    op.drop_table("mailboxes")
