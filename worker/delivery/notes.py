"""A lead as a note on an opportunity that is already there: its person's first introduction's,
or one staff made for the customer.

Nexudus has no conditional update, so notes are merged under a lock in the ledger;
a note carries the lead's marker, so a run that finds it there writes it no more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypedDict

from sqlalchemy import bindparam, select

from leadrelay import ledger
from leadrelay.driver import Unit
from leadrelay.models import Lead, LeadState
from leadrelay.nexudus.client import NexudusClient
from leadrelay.nexudus.payloads import Route, channel_label, introduction_note, note_marker, with_note
from leadrelay.worker import introductions
from leadrelay.worker.delivery import policy
from leadrelay.worker.delivery.attempts import Hold
from leadrelay.worker.delivery.outcome import Outcome

WAIT_FOR_FIRST_SECONDS = 3
NOTE_LOCK_WAIT_SECONDS = 1

Merge = Callable[[dict[str, Any]], dict[str, Any] | None]  # the GET record in, the record to PUT out


class _LockKey(TypedDict):
    """Which opportunity's note lock, and who holds it: the same for taking and releasing it."""

    account: str
    opportunity_id: int
    owner: str


# what deciding the introduction reads of the lead (built once; not the whole row, which is large)
_INTRODUCED = select(
    Lead.id,
    Lead.identity,
    Lead.location,
    Lead.received_at,
    Lead.channel,
    Lead.account,
    Lead.first_introduction,
).where(Lead.id == bindparam("_id"))


def first_introduction(hold: Hold, work: Unit) -> Lead | None:
    """The lead whose opportunity this one belongs to, or None when this lead is the first."""
    # as claimed, under this run's lease (only a run holding it writes first_introduction)
    claimed = hold.s.introduction
    if claimed is not None and claimed.decided:  # by the claim itself, under the person's lock
        first = claimed.first_introduction
        return None if first in (None, hold.s.id) else work.orm().get(Lead, first)
    row = claimed or work.orm().execute(_INTRODUCED, {"_id": hold.s.id}).one()
    # the decision is written under the person's lock (a first introduction points at itself)
    relation = introductions.relate(work, row, routing=hold.rt.routing, mark=hold.owner)
    decided = relation.first if relation.first is not None else hold.s.id
    if claimed is not None and decided != claimed.first_introduction:
        hold.s = replace(hold.s, introduction=replace(claimed, first_introduction=decided))  # as the ledger
    return None if relation.first is None else work.orm().get(Lead, relation.first)


def attach_to_first(hold: Hold, client: NexudusClient, route: Route, first: Lead) -> Outcome:
    """A later introduction: a note on the first introduction's opportunity, once it has one."""
    if first.state != LeadState.delivered or first.opportunity_id is None:
        # the first introduction is not in Nexudus yet: wait for it
        return policy.wait(
            hold, WAIT_FOR_FIRST_SECONDS, f"waiting for lead {first.id}, the first introduction"
        )
    first_channel = hold.rt.routing.channels.get(first.channel)
    first_label = channel_label(first.channel, first_channel) if first_channel else first.channel
    reference = f" ref {first.external_id}" if first.external_id else ""
    when = first.received_at.strftime("%Y-%m-%d %H:%M UTC")
    return attach(
        hold,
        client,
        route,
        first.opportunity_id,
        heading="Later introduction",
        first=f"{first_label}{reference} on {when}",
    )


def attach(
    hold: Hold, client: NexudusClient, route: Route, opportunity_id: int, *, heading: str, first: str | None
) -> Outcome:
    """Append this lead as a note to an existing opportunity, one writer at a time."""

    def merge(record: dict[str, Any]) -> dict[str, Any] | None:
        if note_marker(hold.s.id) in (record.get("Notes") or ""):
            return None  # an earlier run's PUT landed: written once
        label = channel_label(route.channel, route.channel_config)
        note = introduction_note(
            hold.s.lead,
            label=label,
            lead_id=hold.s.id,
            received_at=hold.s.received_at,
            first=first,
            heading=heading,
        )
        return with_note(record, note)

    def then(record: dict[str, Any]) -> Outcome:
        return policy.settle(
            hold,
            LeadState.attached,
            coworker_id=record.get("CoworkerId"),
            opportunity_id=opportunity_id,
            name=record.get("Name"),
        )

    return merge_into(hold, client, route.account, opportunity_id, merge=merge, then=then)


def merge_into(
    hold: Hold,
    client: NexudusClient,
    account: str,
    opportunity_id: int,
    *,
    merge: Merge,
    then: Callable[[dict[str, Any]], Outcome],
) -> Outcome:
    """GET the opportunity, ``merge`` it, PUT the whole record back — one writer at a time.

    Nexudus has no conditional update: two GET–merge–PUTs interleaving would
    lose a change, so they take turns under a lock in the ledger (one that expires,
    so a killed worker cannot keep it). ``merge`` returns the record to PUT, or None
    when there is nothing to write (its change is there already: it must look for
    its own marker, so a retried PUT whose answer was lost writes nothing twice).
    ``then`` ends the run with the record as it was read.
    """

    def work() -> Outcome:
        got = hold.call("opportunity.get", lambda guard: client.get_opportunity(opportunity_id, guard=guard))
        if not got.ok:
            return policy.failed(hold, got, call="opportunity.get")
        record = dict(got.value or {})
        merged = merge(record)
        if merged is not None:
            updated = hold.call(
                "opportunity.update", lambda guard: client.update_opportunity(merged, guard=guard)
            )
            if not updated.ok:
                return policy.failed(hold, updated, call="opportunity.update")
        return then(record)

    return one_writer(hold, account, opportunity_id, work)


def one_writer(hold: Hold, account: str, opportunity_id: int, work: Callable[[], Outcome]) -> Outcome:
    """Run ``work`` (a GET–merge–PUT of the opportunity) holding its writer lock, or wait for it.

    Every path that merges into an existing opportunity (a note, a follow-up, a twin's
    enrichment) takes this one lock, so their GET–merge–PUTs never interleave.
    """
    lock = _LockKey(account=account, opportunity_id=opportunity_id, owner=hold.owner)
    with hold.tx() as session:
        taken = ledger.lock_opportunity(session, **lock, seconds=hold.rt.settings.lease_seconds)
    if not taken:
        return policy.wait(
            hold, NOTE_LOCK_WAIT_SECONDS, f"opportunity {opportunity_id} is being updated by another lead"
        )
    try:
        return work()
    finally:
        with hold.tx() as session:
            ledger.unlock_opportunity(session, **lock)
