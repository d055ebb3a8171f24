"""Operations: purge marks on leads, the Nexudus auth state per account, alert memory.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 06:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadrelay.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("firing", sa.Boolean(), nullable=False),
        sa.Column("since", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("last_sent_at", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("mark", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", leadrelay.db.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("purged_why", sa.String(length=16), nullable=True))
    with op.batch_alter_table("nexudus_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auth_ok", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("auth_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("auth_at", leadrelay.db.UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nexudus_accounts", schema=None) as batch_op:
        batch_op.drop_column("auth_at")
        batch_op.drop_column("auth_error")
        batch_op.drop_column("auth_ok")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("purged_why")
        batch_op.drop_column("purged_at")
    op.drop_table("alerts")
