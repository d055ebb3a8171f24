"""The ledger row as delivery reads it, once, under the lease."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from leadrelay import ledger
from leadrelay.canonical import CanonicalLead
from leadrelay.driver import Unit
from leadrelay.settings import Settings


@dataclass(frozen=True, slots=True)
class Introduction:
    """The row's columns an introduction decision reads (``introductions.Introduced``), as claimed."""

    id: int
    identity: str | None
    location: str | None
    received_at: datetime
    channel: str
    account: str | None
    first_introduction: int | None  # written only under this lead's lease (delivery/notes.py)
    decided: bool = False  # by the claim, under the person's lock: first_introduction is the decision


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What delivery needs from the ledger row, read once under the lease."""

    id: int
    channel: str
    lead: CanonicalLead
    received_at: datetime
    attempts: int
    fingerprint: str
    create_sent_at: datetime | None  # a create may have happened (see the package's docstring)
    opportunity_name: str | None  # the Name tag and SystemId that create was sent under
    system_id: str | None
    landing_wait: float  # seconds until that create can no longer land in Nexudus (0: it cannot)
    introduction: Introduction | None = None  # None: read it from the ledger when needed

    @classmethod
    def of(cls, row: ledger.LeadRecord, *, landing_wait: float = 0.0) -> Snapshot:
        lead = CanonicalLead.from_ledger(row.lead)
        # The enquiry's own time starts the follow-up clock, unless it claims to be
        # later than its arrival here (a portal with a wrong clock).
        enquired = lead.received_at
        if enquired is None or enquired.tzinfo is None or enquired > row.received_at:
            enquired = row.received_at
        return cls(
            id=row.id,
            channel=row.channel,
            lead=lead,
            received_at=enquired,
            attempts=row.attempts,
            fingerprint=row.fingerprint or "",
            create_sent_at=row.create_sent_at,
            opportunity_name=row.opportunity_name,
            system_id=row.system_id,
            landing_wait=landing_wait,
            introduction=Introduction(
                row.id,
                row.identity,
                row.location,
                row.received_at,
                row.channel,
                row.account,
                row.first_introduction,
                row.decided,
            ),
        )


def landing_wait(work: Unit, row: ledger.LeadRecord, settings: Settings) -> float:
    """Seconds until a create sent at ``row.create_sent_at`` can no longer land (ledger clock)."""
    if row.create_sent_at is None:
        return 0.0
    horizon = timedelta(seconds=settings.nexudus_timeout + settings.write_landing_seconds)
    return max(0.0, (row.create_sent_at + horizon - ledger.db_now(work.orm())).total_seconds())
