"""The ledger: the source of truth for every lead (DESIGN.md §2).

``leads`` holds one row per inbound item — a webhook delivery or a mail
message — from the moment it arrives: the raw bytes, then the canonical lead,
then the delivery outcome. Broker messages carry only ``leads.id``.

States and the only transitions the code makes (each a guarded UPDATE)::

    received ──normalise──> normalised ──claim──> delivering ──> delivered
        │                       ^                     │
        ├──> duplicate          └──── retry/throttle ─┤
        ├──> ignored                                   ├──> attached (a later introduction:
        └──> dead (parse_error, routing)               │    a note on the first one's opportunity)
                                                       ├──> merged (a follow-up: merged into its
                                                       │    enquiry's opportunity, worker/follow_ups.py)
                                                       └──> dead ──replay──> normalised
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from leadrelay.db import Base, UtcDateTime, utcnow
from leadrelay.db import Id as Id
from leadrelay.db import Json as Json


class LeadState(StrEnum):
    received = "received"
    normalised = "normalised"
    delivering = "delivering"
    delivered = "delivered"
    attached = "attached"
    merged = "merged"  # a follow-up of an enquiry, merged into its opportunity
    duplicate = "duplicate"
    ignored = "ignored"
    dead = "dead"


TERMINAL_STATES = frozenset(
    {
        LeadState.delivered,
        LeadState.attached,
        LeadState.merged,
        LeadState.duplicate,
        LeadState.ignored,
        LeadState.dead,
    }
)


class DeadReason(StrEnum):
    parse_error = "parse_error"
    validation = "validation"
    routing = "routing"
    auth = "auth"
    exhausted = "exhausted"
    internal = "internal"  # leadrelay itself failed on the lead N times (a bug, a crash): fix, then replay
    no_original = "no_original"  # a follow-up whose enquiry never reached Nexudus in time: replay once it has
    unverified_sender = (
        "unverified_sender"  # mail whose sender domain did not pass DKIM/SPF/DMARC: check, replay
    )


class DeadLetterStatus(StrEnum):
    open = "open"
    replayed = "replayed"
    discarded = "discarded"
    superseded = "superseded"


class PurgeReason(StrEnum):
    retention = "retention"
    erasure = "erasure"


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # webhook | email | admin
    intake_key: Mapped[str] = mapped_column(String(400), unique=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    content_type: Mapped[str | None] = mapped_column(String(200))
    raw_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    raw_meta: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)

    state: Mapped[str] = mapped_column(String(16), default=LeadState.received)
    state_changed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    lead: Mapped[dict[str, Any] | None] = mapped_column(Json)
    external_id: Mapped[str | None] = mapped_column(String(200))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    identity: Mapped[str | None] = mapped_column(String(320))
    location: Mapped[str | None] = mapped_column(String(100))
    duplicate_of: Mapped[int | None] = mapped_column(Id, ForeignKey("leads.id"))
    first_introduction: Mapped[int | None] = mapped_column(Id, ForeignKey("leads.id"))
    company_key: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    # a follow-up (an update, a viewing, a withdrawal) of the enquiry whose reference is external_id:
    # adapters.events.FollowUp's JSON; NULL for a lead
    follow_up: Mapped[dict[str, Any] | None] = mapped_column(Json)

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # stage runs (normalise, deliver) started and not finished: a crash, a kill, a bug.
    # Reset whenever a run ends normally; at LEADRELAY_MAX_UNFINISHED_RUNS the lead is dead.
    unfinished_runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    enqueued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)

    account: Mapped[str | None] = mapped_column(String(100))
    coworker_id: Mapped[int | None] = mapped_column(BigInteger)
    opportunity_id: Mapped[int | None] = mapped_column(BigInteger)
    opportunity_name: Mapped[str | None] = mapped_column(String(300))
    # How Nexudus knows the enquiry (the Name tag and SystemId), fixed when a create is
    # first sent and carried by a resend or an edit, so the lookup never loses it.
    system_id: Mapped[str | None] = mapped_column(String(200))
    # A create may have happened for this enquiry: when the latest one whose answer is
    # unknown was sent (in flight counts). Inherited by whatever carries the enquiry on.
    create_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # A twin that enriched its enquiry's opportunity and customer: what it wrote there
    # (``{"at": …, "opportunity": {"Id": …, field: value}, "coworker": {…}}``)
    written: Mapped[dict[str, Any] | None] = mapped_column(Json)

    # personal data removed (raw body, contact, message): by the retention policy or on request
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    purged_why: Mapped[str | None] = mapped_column(String(16))  # retention | erasure

    __table_args__ = (
        Index("ix_leads_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_leads_channel_external_id", "channel", "external_id"),
        Index("ix_leads_received_at", "received_at"),
        Index("ix_leads_account_state_next_attempt_at", "account", "state", "next_attempt_at"),
        Index("ix_leads_identity_location", "identity", "location"),
        Index("ix_leads_location_company_key", "location", "company_key"),
        Index("ix_leads_first_introduction", "first_introduction"),
        # search (leadrelay/ledger/search.py); the contact's e-mail, phone and name are indexed
        # as expressions on Postgres only: migration 0010_search, SEARCH_EXPRESSION_INDEXES
        Index("ix_leads_external_id", "external_id"),
        Index("ix_leads_opportunity_id", "opportunity_id"),
        Index("ix_leads_coworker_id", "coworker_id"),
    )


# Expression indexes the migrations create on Postgres and the models do not declare
# (a JSONB path is not portable): autogenerate leaves them alone (migrations/env.py).
SEARCH_EXPRESSION_INDEXES = frozenset(
    {"ix_search_leads_email", "ix_search_leads_phone", "ix_search_leads_name"}
)


class DedupeKey(Base):
    """Who owns a dedupe key: the first lead to claim it is the primary."""

    __tablename__ = "dedupe_keys"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    lead_id: Mapped[int] = mapped_column(Id, ForeignKey("leads.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class DeliveryAttempt(Base):
    """One Nexudus call made for a lead; written *before* a create is sent."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(Id, ForeignKey("leads.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    call: Mapped[str] = mapped_column(String(40))
    status_code: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(16))  # NULL while in flight
    error: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    lead_id: Mapped[int] = mapped_column(Id, ForeignKey("leads.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=DeadLetterStatus.open)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # at most one open dead letter per lead
        Index(
            "uq_dead_letters_open_lead",
            "lead_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index("ix_dead_letters_status_created_at", "status", "created_at"),
    )


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    result: Mapped[str] = mapped_column(String(200))

    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_target", "target"))


class CoworkerCache(Base):
    """Nexudus Coworker id by account and e-mail, to save a search per lead."""

    __tablename__ = "coworker_cache"

    account: Mapped[str] = mapped_column(String(100), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    coworker_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class MailboxState(Base):
    """Where the poll of one configured inbox stands, and who is polling it now.

    ``last_uid`` only moves past messages that are in the ledger *and* marked
    processed; ``uidvalidity`` and ``source`` say which folder the UIDs belong to,
    so a reset folder or a re-pointed inbox is re-scanned from the start.
    """

    __tablename__ = "mailboxes"

    inbox: Mapped[str] = mapped_column(String(100), primary_key=True)
    source: Mapped[str] = mapped_column(String(600))  # user@host:port/folder the UIDs belong to
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    polled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # health (docs/runbook.md, "An inbox is stale or failing"): the last pass that finished,
    # new messages imported over all passes, and the failures since the last success
    last_ok_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    imported: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error_kind: Mapped[str | None] = mapped_column(String(20))
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime())


class InboxToken(Base):
    """An inbox's OAuth2 refresh token: stored by ``leadrelay inbox authorize``, replaced
    whenever the token endpoint rotates it, read by every poller (never logged)."""

    __tablename__ = "inbox_tokens"

    inbox: Mapped[str] = mapped_column(String(100), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(300))  # the app it was issued to
    refresh_token: Mapped[str] = mapped_column(Text)
    authorized_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    rotations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # sha256 of the routing file's refresh token this one descends from (None: from `inbox authorize`);
    # a different configured token is newer than this row, so the row is not used
    seed: Mapped[str | None] = mapped_column(String(64))


class NexudusAccount(Base):
    """One Nexudus account's shared request budget; its row lock serialises the account's budget.

    (The account's room, its deliveries in flight, has a lock of its own on Postgres:
    ``worker.dispatch.holding_room``.)

    Times are seconds on the database's clock (so hosts with drifting clocks agree),
    scaled by the limits' ``clock_speed`` in tests against a sped-up sandbox.
    """

    __tablename__ = "nexudus_accounts"

    account: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_request_at: Mapped[float] = mapped_column(Float, default=0.0)
    next_write_at: Mapped[float] = mapped_column(Float, default=0.0)
    blocked_until: Mapped[float] = mapped_column(Float, default=0.0)
    last_sent_at: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # the last token grant's outcome, for /readyz and alerts (NULL: never tried)
    auth_ok: Mapped[bool | None] = mapped_column(Boolean)
    auth_error: Mapped[str | None] = mapped_column(Text)
    auth_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class NexudusUsage(Base):
    """Requests and writes sent per account per minute, for the hourly and daily caps."""

    __tablename__ = "nexudus_usage"

    account: Mapped[str] = mapped_column(String(100), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    writes: Mapped[int] = mapped_column(Integer, default=0)


class PossibleDuplicate(Base):
    """Same company and a similar name, other contact details: for a person to judge."""

    __tablename__ = "possible_duplicates"

    lead_id: Mapped[int] = mapped_column(Id, ForeignKey("leads.id"), primary_key=True)
    other_lead_id: Mapped[int] = mapped_column(Id, ForeignKey("leads.id"), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class OpportunityLock(Base):
    """Who is appending a note to an opportunity right now (GET, merge, PUT must not interleave)."""

    __tablename__ = "opportunity_locks"

    account: Mapped[str] = mapped_column(String(100), primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    until: Mapped[datetime] = mapped_column(UtcDateTime())


class Alert(Base):
    """What the alerting hook last said about one condition, so it never repeats itself."""

    __tablename__ = "alerts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # e.g. dead_letters, nexudus_auth:main
    firing: Mapped[bool] = mapped_column(Boolean, default=False)
    since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    mark: Mapped[int] = mapped_column(BigInteger, default=0)  # e.g. the newest dead letter already told
    summary: Mapped[str | None] = mapped_column(Text)


SWEEP_JOB = "sweep"  # the periodic job whose last run says a scheduler is alive


from leadrelay.admin_models import AdminSession as AdminSession  # noqa: E402  (registers its table)
from leadrelay.admin_models import BulkJob as BulkJob  # noqa: E402
from leadrelay.admin_models import LoginFailure as LoginFailure  # noqa: E402
from leadrelay.intake.door_log import DoorRejection as DoorRejection  # noqa: E402  (registers its table)
from leadrelay.scheduler_models import ScheduledJob as ScheduledJob  # noqa: E402
from leadrelay.scheduler_models import SchedulerLease as SchedulerLease  # noqa: E402
from leadrelay.staff_models import Assignment as Assignment  # noqa: E402
from leadrelay.staff_models import AssignmentPool as AssignmentPool  # noqa: E402
from leadrelay.staff_models import Notification as Notification  # noqa: E402
