"""Mail intake keys carry a digest of the Message-ID, not the Message-ID itself.

``mail:<Message-ID>[#<body digest>]`` becomes ``mail-id:<sha256>[#<body digest>]``
(see ``worker.imap.keys``): the key outlives the retention purge, and some
mailers build Message-IDs from the sender's name. One-way: a downgrade leaves
the digested keys, which the older code simply does not match (a mail seen
again would be recorded again and then deduplicated by content).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 06:05:00.000000
"""

import hashlib
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REUSED = re.compile(r"^(?P<id>.*)(?P<suffix>#[0-9a-f]{32})$")
_BATCH = 1000


def digested(key: str) -> str:
    """The new form of an old ``mail:`` key (the Message-ID was stored normalised)."""
    rest = key.removeprefix("mail:")
    match = _REUSED.match(rest)
    message_id, suffix = (match["id"], match["suffix"]) if match else (rest, "")
    return "mail-id:" + hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest() + suffix


def upgrade() -> None:
    leads = sa.table("leads", sa.column("id", sa.BigInteger()), sa.column("intake_key", sa.String(400)))
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(leads.c.id, leads.c.intake_key)
            .where(leads.c.intake_key.like("mail:%"), leads.c.id > last)
            .order_by(leads.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for lead_id, key in rows:
            conn.execute(leads.update().where(leads.c.id == lead_id).values(intake_key=digested(key)))
        last = rows[-1][0]


def downgrade() -> None:
    """Nothing to undo: a digest cannot give the Message-ID back (see the module's note)."""
