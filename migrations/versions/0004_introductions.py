"""Broker attribution: first introductions, company keys, possible duplicates, note locks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 04:18:01.709462
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadrelay.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "opportunity_locks",
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("opportunity_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("until", leadrelay.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", "opportunity_id", name=op.f("pk_opportunity_locks")),
    )
    op.create_table(
        "possible_duplicates",
        sa.Column("lead_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("other_lead_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_possible_duplicates_lead_id_leads")),
        sa.ForeignKeyConstraint(
            ["other_lead_id"], ["leads.id"], name=op.f("fk_possible_duplicates_other_lead_id_leads")
        ),
        sa.PrimaryKeyConstraint("lead_id", "other_lead_id", name=op.f("pk_possible_duplicates")),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "first_introduction", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.add_column(sa.Column("company_key", sa.String(length=200), nullable=True))
        batch_op.drop_index(batch_op.f("ix_leads_identity"))
        batch_op.create_index("ix_leads_first_introduction", ["first_introduction"], unique=False)
        batch_op.create_index("ix_leads_identity_location", ["identity", "location"], unique=False)
        batch_op.create_index("ix_leads_location_company_key", ["location", "company_key"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_leads_first_introduction_leads"), "leads", ["first_introduction"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_leads_first_introduction_leads"), type_="foreignkey")
        batch_op.drop_index("ix_leads_location_company_key")
        batch_op.drop_index("ix_leads_identity_location")
        batch_op.drop_index("ix_leads_first_introduction")
        batch_op.create_index(batch_op.f("ix_leads_identity"), ["identity"], unique=False)
        batch_op.drop_column("company_key")
        batch_op.drop_column("first_introduction")

    op.drop_table("possible_duplicates")
    op.drop_table("opportunity_locks")
