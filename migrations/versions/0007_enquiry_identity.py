"""A create that may have happened belongs to the enquiry; unfinished stage runs are counted.

``leads.system_id`` and ``leads.create_sent_at`` (with ``opportunity_name``) say how
Nexudus knows the enquiry and whether a create may have reached it, so that a
resend that supersedes a dead lead, or an edit, looks the opportunity up before
creating another. ``leads.unfinished_runs`` counts stage runs that never finished
(crashes, kills), so a poison lead becomes a dead letter instead of looping.

Existing leads with a create whose answer was never known get ``create_sent_at``
from that attempt.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadrelay.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unfinished_runs", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("system_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("create_sent_at", leadrelay.db.UtcDateTime(), nullable=True))
    op.execute(
        """
        UPDATE leads SET create_sent_at = (
            SELECT max(a.started_at) FROM delivery_attempts a
            WHERE a.lead_id = leads.id AND a.call = 'opportunity.create'
              AND (a.outcome IS NULL OR a.outcome IN ('unknown', 'ok'))
        )
        WHERE state NOT IN ('delivered', 'attached', 'duplicate', 'ignored')
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("create_sent_at")
        batch_op.drop_column("system_id")
        batch_op.drop_column("unfinished_runs")
