"""A follow-up's delivery: merged into its enquiry's opportunity, once, in order, never a new one.

Claimed like any lead (the same lease, retries and dead letters), then:

- its enquiry not in Nexudus yet, or an earlier follow-up of it not settled: the
  follow-up waits (handed back, not counted as a failure) and is woken when that
  one settles (:func:`leadrelay.worker.follow_ups.wake_write`), else rechecked every
  ``LEADRELAY_FOLLOW_UP_RECHECK_SECONDS``; past ``LEADRELAY_FOLLOW_UP_WAIT_SECONDS``
  it becomes a ``no_original`` dead letter;
- else it is merged into the opportunity by the notes' GET–merge–PUT, under the
  same per-opportunity lock (:func:`notes.merge_into`), its note carrying its
  marker; it settles ``merged``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from leadrelay import ledger
from leadrelay.adapters.events import FollowUp
from leadrelay.canonical import CanonicalLead
from leadrelay.errors import ConfigurationError
from leadrelay.metrics import DEAD
from leadrelay.models import DeadReason, Lead, LeadState
from leadrelay.nexudus.classify import Outcome as Answer
from leadrelay.nexudus.classify import Result
from leadrelay.nexudus.payloads import channel_label
from leadrelay.routing.follow_ups import FollowUpOptions
from leadrelay.runtime import Runtime
from leadrelay.worker import follow_ups
from leadrelay.worker.delivery import notes, policy
from leadrelay.worker.delivery.attempts import Hold, LostLease
from leadrelay.worker.delivery.follow_up_record import Merge, applied
from leadrelay.worker.delivery.outcome import Outcome
from leadrelay.worker.delivery.route import resolve_route
from leadrelay.worker.delivery.snapshot import Snapshot

log = structlog.get_logger(__name__)

AFTER_EARLIER_SECONDS = 1.0  # an earlier follow-up of the enquiry is being merged: look again soon


@dataclass(frozen=True, slots=True)
class Ready:
    """A follow-up whose enquiry is in Nexudus: what its run needs besides the hold."""

    snapshot: Snapshot  # the follow-up's id and attempts; ``lead``: its enquiry as earlier follow-ups left it
    follow_up: FollowUp
    opportunity_id: int
    account: str | None  # where the enquiry's opportunity is


def _enquiry_now(session: Session, enquiry: Lead, row: ledger.LeadRecord) -> CanonicalLead:
    """The enquiry's lead with the follow-ups merged before this one applied, in order."""
    lead = CanonicalLead.from_ledger(enquiry.lead)
    earlier = session.execute(
        select(Lead.follow_up)
        .where(
            Lead.channel == row.channel,
            Lead.external_id == row.external_id,
            Lead.state == LeadState.merged,
            Lead.id < row.id,
        )
        .order_by(Lead.id)
    ).scalars()
    for data in earlier:
        if data:
            lead = applied(lead, FollowUp.from_json(data))
    return lead


def prepare(rt: Runtime, session: Session, row: ledger.LeadRecord, *, owner: str) -> Ready | Outcome:
    """Under the claim: ready to merge, or handed back to wait, or a dead letter."""
    assert row.follow_up is not None
    follow_up = FollowUp.from_json(row.follow_up)
    earlier = follow_ups.earlier_unsettled(session, row)
    enquiry = follow_ups.enquiry_of(session, row)
    if earlier is None and enquiry is not None and enquiry.opportunity_id is not None:
        try:
            lead = _enquiry_now(session, enquiry, row)
        except ValidationError:
            return _dead(
                session, row, owner=owner, message=f"its enquiry, lead {enquiry.id}, no longer reads"
            )
        snapshot = Snapshot(
            id=row.id,
            channel=row.channel,
            lead=lead,
            received_at=row.received_at,
            attempts=row.attempts,
            fingerprint=enquiry.fingerprint or "",
            create_sent_at=None,  # a follow-up never creates
            opportunity_name=None,
            system_id=None,
            landing_wait=0.0,
        )
        return Ready(snapshot, follow_up, enquiry.opportunity_id, enquiry.account)
    settings = rt.settings
    now = ledger.db_now(session)
    if (now - row.received_at).total_seconds() >= settings.follow_up_wait_seconds:
        message = (
            f"its enquiry {row.channel} ref {row.external_id} did not reach Nexudus within "
            f"{settings.follow_up_wait_seconds:g} s (LEADRELAY_FOLLOW_UP_WAIT_SECONDS); "
            "replay this follow-up once it has"
        )
        return _dead(session, row, owner=owner, message=message)
    if earlier is not None:
        why, wait = f"waiting for follow-up {earlier}, sent earlier", AFTER_EARLIER_SECONDS
    else:
        why, wait = (
            f"waiting for its enquiry ({row.channel} ref {row.external_id})",
            settings.follow_up_recheck_seconds,
        )
    moved = ledger.release(
        session,
        row.id,
        owner=owner,
        next_attempt_at=now + timedelta(seconds=wait),
        error=why,
        count_attempt=False,
    )
    return Outcome.waiting if moved else Outcome.lost_lease


def _dead(session: Session, row: ledger.LeadRecord, *, owner: str, message: str) -> Outcome:
    letter = ledger.kill(
        session,
        row.id,
        from_states=[LeadState.delivering],
        reason=DeadReason.no_original,
        message=message,
        detail={"channel": row.channel, "reference": row.external_id},
        owner=owner,
    )
    if letter is None:
        return Outcome.lost_lease
    DEAD.labels(channel=row.channel, reason=DeadReason.no_original.value).inc()
    log.warning("dead_letter_opened", reason=DeadReason.no_original.value, dead_letter_id=letter.id)
    return Outcome.dead


def merge(hold: Hold, ready: Ready) -> Outcome:
    """Merge the follow-up into its enquiry's opportunity and settle it ``merged``."""
    rt, s = hold.rt, hold.s
    route = resolve_route(rt.routing, s.channel, s.lead)
    if isinstance(route, str):
        return policy.dead(hold, DeadReason.routing, route, {"listing": s.lead.listing.id})
    account = ready.account or route.account
    config = rt.routing.accounts.get(account)
    options = config.follow_ups if config is not None else FollowUpOptions()
    try:
        client = rt.nexudus(account)
    except ConfigurationError as err:
        return policy.failed(hold, Result(Answer.pause, message=str(err)), call="configuration")
    plan = Merge(
        follow_up=ready.follow_up,
        before=s.lead,
        lead_id=s.id,
        label=channel_label(route.channel, route.channel_config),
        received_at=s.received_at,
        options=options,
        route=route,
    )

    def then(record: dict[str, object]) -> Outcome:
        coworker = record.get("CoworkerId")
        name = record.get("Name")
        return policy.settle(
            hold,
            LeadState.merged,
            coworker_id=coworker if isinstance(coworker, int) else None,
            opportunity_id=ready.opportunity_id,
            name=name if isinstance(name, str) else None,
        )

    try:
        return notes.merge_into(hold, client, account, ready.opportunity_id, merge=plan.record, then=then)
    except (LostLease, SQLAlchemyError):
        raise
    except Exception as exc:  # a bug must not lose the follow-up: retry, then dead-letter
        log.exception("follow_up_error", lead_id=s.id)
        return policy.failed(
            hold, Result(Answer.retry, message=f"internal error: {type(exc).__name__}"), "internal"
        )
