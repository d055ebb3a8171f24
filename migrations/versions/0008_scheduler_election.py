"""The scheduler is elected in the ledger; each periodic job's last run is kept there.

``scheduler_leases`` holds the lease of the one process that runs the periodic
jobs (any worker, or ``leadrelay beat``); ``scheduled_jobs`` remembers when each
job last started and ended and who ran it, so a new leader neither repeats nor
skips a job, and readiness can tell when no scheduler has run for a while.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadrelay.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("term", sa.BigInteger(), nullable=False),
        sa.Column("since", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("until", leadrelay.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )
    op.create_table(
        "scheduled_jobs",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("created_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("last_run_at", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("last_done_at", leadrelay.db.UtcDateTime(), nullable=True),
        sa.Column("last_runner", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduled_jobs")),
    )


def downgrade() -> None:
    op.drop_table("scheduled_jobs")
    op.drop_table("scheduler_leases")
