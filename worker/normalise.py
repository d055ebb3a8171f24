"""Stage 1: raw item → canonical lead → primary, duplicate, ignored or dead.

One transaction per lead: the adapter's reading, the dedupe claim and the state
change commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from leadrelay import logs
from leadrelay.adapters import NotALead, ParseError, RawItem
from leadrelay.adapters.pieces import split_item
from leadrelay.adapters.portal import PortalAdapter
from leadrelay.adapters.registry import context_for
from leadrelay.canonical import CanonicalLead
from leadrelay.db import utcnow
from leadrelay.ledger import kill, transition, transition_then
from leadrelay.ledger.introduced import Person
from leadrelay.models import DeadReason, Lead, LeadState
from leadrelay.routing import Routing
from leadrelay.statements import per_dialect, unflushed
from leadrelay.worker import dedupe, follow_ups, introductions
from leadrelay.worker.delivery import enrich
from leadrelay.worker.imap.intake import Outcome, sort_message, unsorted
from leadrelay.worker.several import record_parts, unsplit


@dataclass(frozen=True, slots=True)
class Normalised:
    state: LeadState
    duplicate_of: int | None = None
    channel: str | None = None  # set when this call moved the lead (for metrics, after commit)
    account: str | None = None  # the routing account, when this call made the lead normalised
    parts: tuple[int, ...] = ()  # the leads recorded from a mail that holds several (worker/several.py)
    sorted_mail: bool = False  # this call sorted a mail the inbox poll stored raw (counted as intake)
    reason: str = DeadReason.parse_error.value  # of a dead letter this call opened
    person: Person | None = None  # the primary's person, when this call made the lead normalised


def read(routing: Routing, lead: Lead) -> CanonicalLead:
    """The canonical lead of a raw ledger row; raises the adapter's errors."""
    if lead.channel not in routing.channels:
        raise ParseError(f"channel {lead.channel!r} is not in the routing file")
    if lead.raw_body is None:
        raise ParseError("the raw item was purged (retention) and cannot be read again")
    try:
        ctx, adapter = context_for(routing, lead.channel)
    except KeyError as err:
        raise ParseError(str(err.args[0]) if err.args else "no adapter for this channel") from None
    item = RawItem(
        kind="email" if lead.source == "email" else "webhook",
        body=lead.raw_body,
        content_type=lead.content_type,
    )
    canonical = adapter.parse(item, ctx)
    if canonical.received_at is None:
        canonical = canonical.model_copy(update={"received_at": lead.received_at})
    return canonical


def read_so_far(routing: Routing, lead: Lead) -> dict[str, Any] | None:
    """What a lead that could not be read does hold (the form for ``dlq edit``); None when nothing."""
    if lead.channel not in routing.channels or lead.raw_body is None:
        return None
    try:
        ctx, adapter = context_for(routing, lead.channel)
    except KeyError:
        return None
    if not isinstance(adapter, PortalAdapter):
        return None
    item = RawItem(kind="email" if lead.source == "email" else "webhook", body=lead.raw_body)
    return adapter.read_so_far(item, ctx)


def _several(session: Session, lead: Lead, routing: Routing) -> Normalised | None:
    """A whole mail that holds several leads (a rerouted or replayed digest): recorded one by one."""
    if lead.source != "email" or lead.raw_body is None or not unsplit(lead.raw_meta, lead.content_type):
        return None
    try:
        ctx, adapter = context_for(routing, lead.channel)
    except Exception:  # no channel, no adapter: read() says so in a dead letter
        return None
    split = split_item(adapter, lead.raw_body, ctx.limits)
    if split.kind is None:
        return None
    parts = record_parts(
        session,
        lead_id=lead.id,
        key=lead.intake_key,
        channel=lead.channel,
        split=split,
        meta=lead.raw_meta or {},
        unfinished_runs=0,
        lease_owner=None,
        lease_until=None,
    )
    state = LeadState.dead if parts.failed else LeadState.ignored
    return Normalised(state=state, channel=lead.channel, parts=parts.lead_ids)


_SETTLED = {
    Outcome.ignored: LeadState.ignored,
    Outcome.failed: LeadState.dead,
    Outcome.several: LeadState.ignored,  # a mail of several leads is settled beside them
}
_GIVE_BACK: dict[str, Any] = {"unfinished_runs": 0, "lease_owner": None, "lease_until": None}


def _sort(session: Session, lead: Lead, routing: Routing) -> Normalised:
    """A mail the poll stored raw: sorted (worker/imap/intake.py), then read unless that settled it."""
    door = sort_message(session, lead, routing=routing, **_GIVE_BACK)
    if door.settled is None:
        return replace(_read(session, lead, routing), sorted_mail=True)
    state = _SETTLED[door.settled]
    return Normalised(
        state=state, channel=lead.channel, parts=door.parts, sorted_mail=True, reason=door.reason.value
    )


# built once: every lead is read through it; the worker's reading commits without waiting for
# the disk (the unflushed one says so itself: no SET LOCAL round trip)
_LEAD_LOCKED = select(Lead).where(Lead.id == bindparam("_id")).with_for_update()
_LEAD_LOCKED_UNFLUSHED = per_dialect(lambda pg: unflushed(_LEAD_LOCKED) if pg else _LEAD_LOCKED)


def normalise(
    session: Session, lead_id: int, *, routing: Routing, reader: str | None = None, flushed: bool = True
) -> Normalised:
    """Read, dedupe and move a ``received`` lead on; a no-op for any other state.

    ``reader``: the owner of the reading lease (:func:`leadrelay.ledger.start_reading`);
    a lead leased to another reader is left to it. ``flushed=False`` (Postgres): the
    session's transaction commits without waiting for the disk
    (:data:`leadrelay.statements.UNFLUSHED_CLAUSE`, in the statement that reads the
    lead), unless :func:`leadrelay.db.flush_at_commit` says otherwise later.
    """
    read_lead = _LEAD_LOCKED if flushed else _LEAD_LOCKED_UNFLUSHED(session)
    lead = session.execute(read_lead, {"_id": lead_id}).scalar_one_or_none()
    if lead is not None:
        logs.bind_lead(lead.id, lead.channel, lead.raw_meta)
    if lead is None or lead.state != LeadState.received:
        return Normalised(state=LeadState(lead.state) if lead else LeadState.dead)
    if reader is not None and lead.lease_owner != reader:
        return Normalised(state=LeadState.received)  # another worker is reading it
    if unsorted(lead.raw_meta):
        return _sort(session, lead, routing)
    return _read(session, lead, routing)


def _read(session: Session, lead: Lead, routing: Routing) -> Normalised:
    """A ``received`` lead this reader holds: split, followed up, read and accepted, or settled."""
    lead_id = lead.id
    several = _several(session, lead, routing)
    if several is not None:
        return several
    try:
        follow_up = follow_ups.read(routing, lead)
        if follow_up is not None:
            state, duplicate_of, account = follow_ups.accept(session, lead, follow_up, routing=routing)
            return Normalised(state=state, duplicate_of=duplicate_of, channel=lead.channel, account=account)
        canonical = read(routing, lead)
    except NotALead as err:
        transition(
            session,
            lead_id,
            from_states=[LeadState.received],
            to=LeadState.ignored,
            note=str(err),
            unfinished_runs=0,
            lease_owner=None,
            lease_until=None,
        )
        return Normalised(state=LeadState.ignored, channel=lead.channel)
    except ParseError as err:
        kill(
            session,
            lead_id,
            from_states=[LeadState.received],
            reason=DeadReason.parse_error,
            message=str(err),
            detail={"error": str(err), "channel": lead.channel, "source": lead.source},
        )
        return Normalised(state=LeadState.dead, channel=lead.channel)
    return accept(session, lead, canonical, routing=routing)


def accept(
    session: Session,
    lead: Lead,
    canonical: CanonicalLead,
    *,
    routing: Routing,
    from_state: LeadState = LeadState.received,
    **values: Any,
) -> Normalised:
    """Dedupe a canonical lead and make it the primary (due now) or a duplicate."""
    fp = dedupe.fingerprint(canonical)
    keys = dedupe.keys_for(canonical, channel=lead.channel, fingerprint=fp)
    verdict = dedupe.claim(session, lead.id, keys)
    location = routing.location_for(lead.channel, canonical.listing.id)
    facts: dict[str, Any] = {
        "unfinished_runs": 0,
        "lease_owner": None,
        "lease_until": None,
        "lead": canonical.to_json_dict(),
        "external_id": canonical.external_id,
        "fingerprint": fp,
        "identity": canonical.identity(),
        "location": location,
        "account": routing.locations[location].account if location else None,
        "company_key": introductions.company_key(canonical.contact.company),
    }
    # a twin carrying what the delivered lead lacked is delivered as a merge (delivery/enrich.py)
    twin = verdict.duplicate_of is not None and enrich.enriches(session, verdict.duplicate_of, canonical)
    if verdict.duplicate_of is not None and not twin:
        transition(
            session,
            lead.id,
            from_states=[from_state],
            to=LeadState.duplicate,
            duplicate_of=verdict.duplicate_of,
            **{**facts, **values},
        )
        return Normalised(state=LeadState.duplicate, duplicate_of=verdict.duplicate_of, channel=lead.channel)
    now = utcnow()
    move: dict[str, Any] = {
        "from_states": [from_state],
        "to": LeadState.normalised,
        "now": now,
        "next_attempt_at": now,
        "duplicate_of": verdict.duplicate_of,  # None for the primary (also one that was a twin before)
        **facts,
        **values,
    }
    compared = None
    if not twin and not values:
        # the row as the UPDATE leaves it, without reading it back (nothing marked dirty)
        moved = {
            **facts,
            "duplicate_of": None,
            "state": LeadState.normalised,
            "state_changed_at": now,
            "next_attempt_at": now,
        }
        for name, value in moved.items():
            set_committed_value(lead, name, value)
        compared = introductions.same_company(lead, canonical, routing=routing)
    others = None
    if compared is None:
        transition(session, lead.id, **move)
    else:  # the same company's leads read in the move's statement
        others = transition_then(session, lead.id, then=(introductions.SAME_COMPANY, compared), **move)
    if twin:
        return Normalised(
            state=LeadState.normalised,
            duplicate_of=verdict.duplicate_of,
            channel=lead.channel,
            account=facts["account"],
        )
    if values:
        session.refresh(lead)
    introductions.flag_possible_duplicates(session, lead, canonical, routing=routing, others=others)
    return Normalised(
        state=LeadState.normalised,
        channel=lead.channel,
        account=facts["account"],
        person=introductions.person_of(lead, routing),
    )
