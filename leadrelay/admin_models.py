"""The admin's own tables: who is logged in, and refused logins (the rate limit).

Kept beside ``models`` (which re-exports them) so the ledger's main tables stay in one
readable module.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from leadrelay.db import Base, UtcDateTime, utcnow

Id = BigInteger().with_variant(Integer(), "sqlite")  # as models.Id


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
