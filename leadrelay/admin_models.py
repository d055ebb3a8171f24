"""The admin's own tables: who is logged in, refused logins (the rate limit), bulk jobs.

Kept beside ``models`` (which re-exports them) so the ledger's main tables stay in one
readable module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadrelay.db import Base, Id, Json, UtcDateTime, utcnow


class AdminSession(Base):
    """A logged-in admin: the cookie holds the id, the ledger its SHA-256; logout deletes the row."""

    __tablename__ = "admin_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(200))
    via: Mapped[str] = mapped_column(String(20))  # token | sso
    credential: Mapped[str] = mapped_column(String(64))  # which token (its digest) or SSO identity
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class LoginFailure(Base):
    """A refused admin login, counted per source address and per user name (rate limit)."""

    __tablename__ = "admin_login_failures"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300))  # addr:<address> | name:<user name>
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    __table_args__ = (Index("ix_admin_login_failures_key_at", "key", "at"),)


class BulkJob(Base):
    """A bulk replay or discard of dead letters, run by a worker in chunks (worker/bulk_jobs.py).

    ``letter_ids`` is the selection, fixed when the job is made; ``done`` counts the
    items taken, in order, each in the transaction of its own action: the point a
    resumed job goes on from. ``failed`` counts the items the action refused.
    """

    __tablename__ = "bulk_jobs"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(16))  # replay | discard
    why: Mapped[str | None] = mapped_column(Text)  # a discard's reason (the audit log's)
    actor: Mapped[str] = mapped_column(String(200))
    letter_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)  # the first few refusals
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)  # queued|running|done
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)  # the job's pulse
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
