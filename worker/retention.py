"""The retention policy: personal data older than ``LEADRELAY_RETENTION_DAYS`` is purged.

Run daily by beat and by ``leadrelay retention``. Only leads that are done with —
delivered, attached, duplicate, ignored or dead — are purged; what they keep is
listed in :mod:`leadrelay.personal_data`. An open dead letter whose lead is purged
is closed, since it can never be replayed. The Nexudus customer cache forgets
addresses not used in as long.

The protection window must fit inside the retention period: deciding who
introduced a person first needs that person's identity on earlier leads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from leadrelay.db import transaction, utcnow
from leadrelay.errors import Refused
from leadrelay.ledger import audit
from leadrelay.models import TERMINAL_STATES, CoworkerCache, Lead, PurgeReason
from leadrelay.personal_data import purge_leads
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime

ACTOR = "system:retention"
BATCH = 500


class RetentionRefused(Refused):
    """The policy cannot run as asked; the message says why in one line."""


@dataclass
class RetentionReport:
    cutoff: datetime
    dry_run: bool
    leads: int = 0
    by_state: Counter[str] = field(default_factory=Counter)
    dead_letters_closed: int = 0
    cache_rows: int = 0


def longest_protection_days(routing: Routing) -> int:
    days = [routing.defaults.protection_days]
    days += [c.protection_days for c in routing.channels.values() if c.protection_days is not None]
    days += [a.protection_days for a in routing.accounts.values() if a.protection_days is not None]
    return max(days)


def cutoff_for(days: int, now: datetime | None = None) -> datetime:
    """Leads received before this are past the retention period."""
    return (now or utcnow()) - timedelta(days=days)


def _due(cutoff: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        Lead.received_at < cutoff,
        Lead.purged_at.is_(None),
        Lead.state.in_([state.value for state in TERMINAL_STATES]),
    )


def count_due(session: Session, cutoff: datetime) -> int:
    return int(session.execute(select(func.count()).select_from(Lead).where(*_due(cutoff))).scalar_one())


def _next_batch(session: Session, cutoff: datetime, after: int) -> list[tuple[int, str]]:
    # walk the primary key, so each batch starts where the last one stopped
    stmt = select(Lead.id, Lead.state).where(Lead.id > after, *_due(cutoff)).order_by(Lead.id).limit(BATCH)
    return [(lead_id, state) for lead_id, state in session.execute(stmt)]


def purge_expired(
    rt: Runtime,
    *,
    days: int,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RetentionReport:
    """Purge what is older than ``days``; each batch commits on its own (safe to stop and rerun)."""
    protection = longest_protection_days(rt.routing)
    if days < protection:
        raise RetentionRefused(
            f"{days} days would forget people still inside the {protection}-day broker protection window: "
            f"keep at least {protection} days"
        )
    report = RetentionReport(cutoff=cutoff_for(days, now), dry_run=dry_run)
    after = 0
    while True:
        with transaction(rt.sessions) as session:
            batch = _next_batch(session, report.cutoff, after)
            if not batch:
                break
            after = batch[-1][0]
            report.by_state.update(state for _, state in batch)
            report.leads += len(batch)
            if not dry_run:
                purged = purge_leads(session, [i for i, _ in batch], why=PurgeReason.retention, actor=ACTOR)
                report.dead_letters_closed += purged.dead_letters_closed
        if progress is not None:
            progress(len(batch))
    with transaction(rt.sessions) as session:
        report.cache_rows = _forget_customers(session, report.cutoff, dry_run=dry_run)
        if not dry_run and (report.leads or report.cache_rows):
            audit(
                session,
                actor=ACTOR,
                action="retention.purge",
                target=f"before:{report.cutoff.isoformat()}",
                result="purged",
                detail={
                    "days": days,
                    "leads": report.leads,
                    "by_state": dict(report.by_state),
                    "dead_letters_closed": report.dead_letters_closed,
                    "coworker_cache_rows": report.cache_rows,
                },
            )
    return report


def _forget_customers(session: Session, cutoff: datetime, *, dry_run: bool) -> int:
    old = CoworkerCache.updated_at < cutoff
    if dry_run:
        return int(session.execute(select(func.count()).select_from(CoworkerCache).where(old)).scalar_one())
    return int(session.execute(delete(CoworkerCache).where(old)).rowcount)  # type: ignore[attr-defined]
