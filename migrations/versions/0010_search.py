"""Search: indexes to find a lead by e-mail, phone, name, reference or Nexudus id; the audit log by target.

On Postgres the contact's e-mail, phone and name are indexed as expressions over the
canonical lead (``leads.lead``, JSONB), written exactly as ``leadrelay.ledger.search``
queries them; nothing is copied into new columns, so an edit or a purge needs no
second write. SQLite (the demo) gets the plain column indexes only.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name -> the indexed expression (Postgres only); see leadrelay/ledger/search.py
EXPRESSIONS = {
    "ix_search_leads_email": "btree (((lead -> 'contact' ->> 'email')) text_pattern_ops)",
    "ix_search_leads_phone": "btree (((lead -> 'contact' ->> 'phone')))",
    "ix_search_leads_name": (
        "gin (to_tsvector('simple'::regconfig, coalesce((lead -> 'contact' ->> 'full_name'), '')))"
    ),
}


def upgrade() -> None:
    op.create_index("ix_leads_external_id", "leads", ["external_id"])
    op.create_index("ix_leads_opportunity_id", "leads", ["opportunity_id"])
    op.create_index("ix_leads_coworker_id", "leads", ["coworker_id"])
    op.create_index("ix_audit_log_target", "audit_log", ["target"])
    if op.get_bind().dialect.name == "postgresql":
        for name, expression in EXPRESSIONS.items():
            op.execute(f"CREATE INDEX {name} ON leads USING {expression}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in EXPRESSIONS:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index("ix_audit_log_target", table_name="audit_log")
    op.drop_index("ix_leads_coworker_id", table_name="leads")
    op.drop_index("ix_leads_opportunity_id", table_name="leads")
    op.drop_index("ix_leads_external_id", table_name="leads")
