"""Follow-ups in the ledger: read, deduplicated, linked to their enquiry, woken when it is delivered.

A follow-up is a ``leads`` row like any item (so leases, the sweeper, retries and
dead letters work for it unchanged) whose ``follow_up`` holds what it says and
whose ``external_id`` is its enquiry's portal reference. Its enquiry is the lead
of the same channel and reference that reached Nexudus (``delivered`` or
``attached``: its ``opportunity_id``). Follow-ups of one enquiry are merged in the
order they arrived (``leads.id``): each waits for the earlier ones to settle.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, aliased

from leadrelay.adapters import RawItem
from leadrelay.adapters.events import FollowUp
from leadrelay.adapters.portal import PortalAdapter
from leadrelay.adapters.registry import context_for
from leadrelay.db import utcnow
from leadrelay.ledger import LeadRecord, SideWrite, now_param, transition
from leadrelay.models import TERMINAL_STATES, Lead, LeadState
from leadrelay.routing import Routing
from leadrelay.statements import per_dialect
from leadrelay.worker import dedupe

DELIVERED = (LeadState.delivered.value, LeadState.attached.value)


def read(routing: Routing, lead: Lead) -> FollowUp | None:
    """The follow-up a raw ledger row is; None when it is none (a lead, or nothing to read yet)."""
    if lead.raw_body is None or lead.channel not in routing.channels:
        return None
    try:
        ctx, adapter = context_for(routing, lead.channel)
    except KeyError:
        return None  # the lead reader says why in its dead letter
    if not isinstance(adapter, PortalAdapter):
        return None
    item = RawItem(
        kind="email" if lead.source == "email" else "webhook",
        body=lead.raw_body,
        content_type=lead.content_type,
    )
    return adapter.follow_up(item, ctx)


def key_for(follow_up: FollowUp, *, channel: str) -> str:
    """Two copies of one follow-up (a webhook resent, its e-mail twin read alike) share this key."""
    return f"follow:{channel}:{hashlib.sha256(follow_up.content().encode()).hexdigest()}"


def enquiry_account(session: Session, routing: Routing, channel: str, reference: str) -> str | None:
    """The account the enquiry went to, else the channel's default location's (for dispatch)."""
    account = session.execute(
        select(Lead.account)
        .where(
            Lead.channel == channel,
            Lead.external_id == reference,
            Lead.follow_up.is_(None),
            Lead.account.is_not(None),
        )
        .limit(1)
    ).scalar_one_or_none()
    if account is not None:
        return account
    location = routing.location_for(channel, None)
    return routing.locations[location].account if location else None


def accept(
    session: Session, lead: Lead, follow_up: FollowUp, *, routing: Routing
) -> tuple[LeadState, int | None, str | None]:
    """Record a ``received`` row as a follow-up: a duplicate of an earlier copy, or due now.

    Returns the state it moved to, the copy it duplicates, and its account.
    """
    verdict = dedupe.claim(session, lead.id, [key_for(follow_up, channel=lead.channel)])
    account = enquiry_account(session, routing, lead.channel, follow_up.reference)
    facts: dict[str, Any] = {
        "unfinished_runs": 0,
        "lease_owner": None,
        "lease_until": None,
        "external_id": follow_up.reference,
        "follow_up": follow_up.to_json(),
        "account": account,
    }
    if verdict.duplicate_of is not None:
        transition(
            session,
            lead.id,
            from_states=[LeadState.received],
            to=LeadState.duplicate,
            duplicate_of=verdict.duplicate_of,
            **facts,
        )
        return LeadState.duplicate, verdict.duplicate_of, account
    now = utcnow()
    transition(
        session,
        lead.id,
        from_states=[LeadState.received],
        to=LeadState.normalised,
        now=now,
        next_attempt_at=now,
        **facts,
    )
    return LeadState.normalised, None, account


def enquiry_of(session: Session, row: LeadRecord) -> Lead | None:
    """The lead of this follow-up's enquiry that is in Nexudus, or None while none is."""
    return session.execute(
        select(Lead)
        .where(
            Lead.channel == row.channel,
            Lead.external_id == row.external_id,
            Lead.follow_up.is_(None),
            Lead.state.in_(DELIVERED),
            Lead.opportunity_id.is_not(None),
        )
        .order_by(Lead.id)
        .limit(1)
    ).scalar_one_or_none()


def earlier_unsettled(session: Session, row: LeadRecord) -> int | None:
    """An earlier follow-up of the same enquiry not settled yet: this one goes after it."""
    return session.execute(
        select(Lead.id)
        .where(
            Lead.channel == row.channel,
            Lead.external_id == row.external_id,
            Lead.follow_up.is_not(None),
            Lead.id < row.id,
            Lead.state.not_in([s.value for s in TERMINAL_STATES]),
        )
        .order_by(Lead.id)
        .limit(1)
    ).scalar_one_or_none()


def _wake_statement(postgres: bool) -> Any:
    """Built once: every delivery runs it, and nearly always it finds nothing to wake.

    Due now by the ledger's clock, the one the dispatch compares with (a worker's
    clock running ahead would leave them waiting for the sweeper's next pass).
    """
    enquiry = aliased(Lead)

    def of_enquiry(column: Any) -> Any:
        return select(column).where(enquiry.id == bindparam("_id")).scalar_subquery()

    return (
        update(Lead)
        .where(
            Lead.channel == of_enquiry(enquiry.channel),
            Lead.external_id == of_enquiry(enquiry.external_id),  # none: NULL, nothing matches
            Lead.follow_up.is_not(None),
            Lead.id != bindparam("_id"),
            Lead.state == LeadState.normalised,
        )
        .values(
            next_attempt_at=now_param(postgres),
            account=func.coalesce(of_enquiry(enquiry.account), Lead.account),
        )
        .execution_options(synchronize_session=False)
    )


_WAKE = per_dialect(_wake_statement)


def wake_write(lead_id: int) -> SideWrite:
    """Follow-ups waiting for this lead's enquiry: due now, under its account — with its settling.

    Carried by the statement that settles the lead (delivered, attached or merged:
    :func:`leadrelay.worker.delivery.policy.settle`), so a follow-up that arrived
    before its enquiry goes with the account's next dispatch, and a worker killed
    right after the settling leaves none asleep. Like every carried write it runs
    even when the settling finds its lease lost: the follow-ups then look again
    early, and wait on (the lead's next owner settles it and wakes them once more).
    """
    return SideWrite(_WAKE, {"_id": lead_id, "_at": utcnow()}, other_leads=True)
