"""The ledger's tables for staff: who each opportunity was assigned to, and the notifications outbox.

Registered with the rest of the ledger by :mod:`leadrelay.models` (which imports
this module last), so migrations and tests see one metadata.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadrelay.db import Base, UtcDateTime, utcnow

Id = BigInteger().with_variant(Integer(), "sqlite")


class AssignmentPool(Base):
    """One rotation of staff ids: its row lock serialises picks, ``turns`` counts them."""

    __tablename__ = "assignment_pools"

    pool: Mapped[str] = mapped_column(String(200), primary_key=True)
    turns: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Assignment(Base):
    """Who an enquiry's opportunity is for, picked once: a retry, a replay or a resend reuses it."""

    __tablename__ = "assignments"

    enquiry: Mapped[str] = mapped_column(String(200), primary_key=True)  # the create's SystemId
    lead_id: Mapped[int] = mapped_column(Id, ForeignKey("leads.id"), index=True)
    pool: Mapped[str] = mapped_column(String(200))
    staff_id: Mapped[int] = mapped_column(BigInteger)
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    __table_args__ = (Index("ix_assignments_pool_staff_id", "pool", "staff_id"),)


class NotificationState(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"  # gave up after the retries; the log and the row say why


class Notification(Base):
    """One message to send, written in the transaction that settles its lead (the outbox).

    ``key`` is unique: one notification per opportunity made (or per later
    introduction attached), transport and recipient, however often a lead is
    retried, replayed or resent. It is also the Message-ID / Idempotency-Key.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    lead_id: Mapped[int] = mapped_column(Id, ForeignKey("leads.id"), index=True)
    event: Mapped[str] = mapped_column(String(16))  # created | attached
    transport: Mapped[str] = mapped_column(String(16))  # email | webhook
    recipient: Mapped[str] = mapped_column(String(400))  # an address, or the webhook's config key
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    account: Mapped[str] = mapped_column(String(100))
    opportunity_id: Mapped[int] = mapped_column(BigInteger)
    intake_at: Mapped[datetime] = mapped_column(UtcDateTime())  # the lead's arrival, for the metric
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default=NotificationState.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_notifications_state_next_attempt_at", "state", "next_attempt_at"),)
