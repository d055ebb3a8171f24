"""Sending what the outbox holds: claim a batch, send each, mark it sent under the claim.

A claim is a lease (``claimed_by``, ``claimed_until``) taken by one UPDATE over
rows locked ``FOR UPDATE SKIP LOCKED``, so two senders never take one row; a row
whose claim expired (its sender died) is due again. The claim is renewed,
guarded, right before each send, so a sender whose batch outlasted its claim
sends nothing another sender has taken; marking sent is guarded the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from pydantic import ValidationError
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from leadrelay.canonical import CanonicalLead
from leadrelay.db import transaction, utcnow
from leadrelay.metrics import count_notification
from leadrelay.models import Lead, Notification
from leadrelay.nexudus.payloads import channel_label
from leadrelay.notifications import transports
from leadrelay.notifications.message import Facts
from leadrelay.notify import NotifyError
from leadrelay.routing import Routing, RoutingError
from leadrelay.runtime import Runtime
from leadrelay.worker.speed_to_lead.outbox import ALL_LOCATIONS

log = structlog.get_logger(__name__)

BATCH = 50
CLAIM_SECONDS = 30.0  # renewed before each send; one send times out well before (SMTP 10 s, webhook 5 s)
RETRY_SECONDS = (5, 30, 120, 600, 1800, 3600)  # then the row is failed


@dataclass(frozen=True, slots=True)
class Sent:
    sent: int = 0
    failed: int = 0


def send_due(rt: Runtime, *, owner: str, limit: int = BATCH) -> Sent:
    """Send the notifications due now (at most ``limit``); what came of them."""
    with transaction(rt.sessions) as session:
        ids = _claim(session, owner=owner, limit=limit)
    sent = failed = 0
    for notification_id in ids:
        done = _send_one(rt, notification_id, owner=owner)
        if done is True:
            sent += 1
        elif done is False:
            failed += 1
    return Sent(sent, failed)


def _claim(session: Session, *, owner: str, limit: int) -> list[int]:
    now = utcnow()
    due = (
        select(Notification.id)
        .where(
            Notification.state == "pending",
            Notification.next_attempt_at <= now,
            or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
        )
        .order_by(Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = session.execute(
        update(Notification)
        .where(Notification.id.in_(due.scalar_subquery()))
        .values(claimed_by=owner, claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    ).scalars()
    return sorted(claimed)


def _send_one(rt: Runtime, notification_id: int, *, owner: str) -> bool | None:
    """Send one claimed row: True sent, False failed, None no longer ours (another sender has it)."""
    with transaction(rt.sessions) as session:
        # the claim is renewed right before the send, so a long batch never sends on a lapsed one
        renewed = session.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.claimed_by == owner,
                Notification.state == "pending",
            )
            .values(claimed_until=utcnow() + timedelta(seconds=CLAIM_SECONDS))
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        row = session.get(Notification, notification_id) if renewed else None
        lead = session.get(Lead, row.lead_id) if row is not None else None
        if row is None or lead is None:
            return None
        facts = facts_for(rt.routing, row, lead, default_url=rt.settings.nexudus_web_opportunity_url)
        transport, recipient, attempts, intake_at = row.transport, row.recipient, row.attempts, row.intake_at
    error: str | None = None
    try:
        if transport == "email":
            transports.send_email(rt.settings, facts, to=recipient)
        else:
            url = _webhook_url(rt.routing, recipient)
            if url is None:
                raise NotifyError(f"no webhook is configured for {recipient!r} any more")
            transports.send_webhook(url, facts)
    except (NotifyError, RoutingError) as err:
        error = str(err)
    now = utcnow()
    if error is None:
        values: dict[str, object] = {"state": "sent", "sent_at": now, "last_error": None}
    elif attempts >= len(RETRY_SECONDS):
        values = {"state": "failed", "last_error": error}
    else:
        values = {"next_attempt_at": now + timedelta(seconds=RETRY_SECONDS[attempts]), "last_error": error}
    with transaction(rt.sessions) as session:
        marked = session.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.claimed_by == owner)
            .values(claimed_by=None, claimed_until=None, attempts=Notification.attempts + 1, **values)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
    outcome = "sent" if error is None else str(values.get("state", "retry"))
    count_notification(
        transport, outcome, seconds=(now - intake_at).total_seconds() if error is None else None
    )
    if error is None:
        log.info(
            "notification_sent", notification_id=notification_id, transport=transport, recorded=bool(marked)
        )
    else:  # the error names the transport's failure, never the recipient or the lead
        log.warning("notification_failed", notification_id=notification_id, transport=transport, error=error)
    return error is None


def facts_for(routing: Routing, row: Notification, lead: Lead, *, default_url: str) -> Facts:
    config = routing.channels.get(lead.channel)
    label = channel_label(lead.channel, config) if config else lead.channel
    member = routing.staff.get(row.staff_id) if row.staff_id is not None else None
    canonical: CanonicalLead | None = None
    if lead.lead is not None and lead.purged_at is None:
        try:
            canonical = CanonicalLead.from_ledger(lead.lead)
        except ValidationError:
            canonical = None
    template = routing.notifications.opportunity_url or default_url
    link = template.format(id=row.opportunity_id, account=row.account)
    return Facts(
        event=row.event,
        key=row.key,
        lead_id=lead.id,
        label=label,
        location=lead.location or "",
        opportunity_id=row.opportunity_id,
        link=link,
        received_at=lead.received_at,
        reject_by=lead.received_at + timedelta(hours=routing.defaults.rejection_window_hours),
        staff_name=member.name if member is not None else None,
        lead=canonical,
    )


def _webhook_url(routing: Routing, recipient: str) -> str | None:
    config = routing.notifications
    if recipient == ALL_LOCATIONS:
        return config.webhook.resolved("notifications.webhook") if config.webhook else None
    location = recipient.removeprefix("team:")
    team = config.teams.get(location)
    if team is None or team.webhook is None:
        return None
    return team.webhook.resolved(f"notifications.teams.{location}.webhook")
