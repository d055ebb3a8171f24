"""Admin sessions (logout ends them here), failed admin logins (rate limit), the door log.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadrelay.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "admin_sessions",
        sa.Column("id_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=200), nullable=False),
        sa.Column("via", sa.String(length=20), nullable=False),
        sa.Column("credential", sa.String(length=64), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("expires_at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id_sha256", name=op.f("pk_admin_sessions")),
    )
    op.create_index(op.f("ix_admin_sessions_expires_at"), "admin_sessions", ["expires_at"])
    op.create_table(
        "admin_login_failures",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_login_failures")),
    )
    op.create_index("ix_admin_login_failures_key_at", "admin_login_failures", ["key", "at"])
    op.create_table(
        "door_rejections",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("at", leadrelay.db.UtcDateTime(), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=40), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("headers", sa.String(length=20000), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=True),
        sa.Column("body_bytes", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_door_rejections")),
    )
    op.create_index("ix_door_rejections_channel_id", "door_rejections", ["channel", "id"])


def downgrade() -> None:
    op.drop_table("door_rejections")
    op.drop_table("admin_login_failures")
    op.drop_table("admin_sessions")
