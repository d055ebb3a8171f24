"""Inbox health (last good pass, messages imported, failures since) and stored OAuth2 refresh tokens.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadrelay.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("last_ok_at", leadrelay.db.UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("imported", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("failures", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("error_kind", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("failing_since", leadrelay.db.UtcDateTime(), nullable=True))
    op.create_table(
        "inbox_tokens",
        sa.Column("inbox", sa.String(length=100), nullable=False),
        sa.Column("client_id", sa.String(length=300), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=False),
        sa.Column("authorized_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("rotated_at", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("rotations", sa.Integer(), server_default="0", nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("inbox", name=op.f("pk_inbox_tokens")),
    )


def downgrade() -> None:
    op.drop_table("inbox_tokens")
    with op.batch_alter_table("mailboxes") as batch:
        for column in ("failing_since", "error_kind", "failures", "imported", "last_ok_at"):
            batch.drop_column(column)
