"""Dead letters: list, inspect, replay, edit, discard — every action audited.

The CLI, the admin API and the admin page all call these functions; none of them
commits: the caller runs one in a unit of work (``leadrelay.worker.queue.unit_of_work``)
and enqueues there the lead a :class:`Replayed` says to, published after the commit.

A replay can never create a second opportunity:

* only an *open* dead letter of a lead that is still ``dead`` can be replayed,
  by a guarded UPDATE, so two admins clicking at once replay it once;
* the lead keeps its create mark (``create_sent_at``, with the Name tag and
  SystemId the create was sent under) through a replay and an edit: a create
  whose outcome was never known makes the next delivery look the opportunity up
  first, under the tag it was sent with, even when the edit changed what the tag
  would be made of;
* a lead that was delivered, or is a duplicate, is never put back in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from leadrelay import errors
from leadrelay.canonical import CanonicalLead, first_error
from leadrelay.db import utcnow
from leadrelay.ledger import audit, transition
from leadrelay.models import DeadLetter, DeadLetterStatus, DeadReason, DeliveryAttempt, Lead, LeadState
from leadrelay.nexudus.payloads import channel_label
from leadrelay.queries import pretty_lead
from leadrelay.routing import ChannelConfig, Routing
from leadrelay.worker import dedupe
from leadrelay.worker.dead_letter_lists import Filter as Filter
from leadrelay.worker.dead_letter_lists import counts as counts
from leadrelay.worker.dead_letter_lists import matching_ids as matching_ids
from leadrelay.worker.normalise import accept, read_so_far

RESET_DELIVERY: dict[str, Any] = {
    "attempts": 0,
    "unfinished_runs": 0,
    "lease_owner": None,
    "lease_until": None,
    "last_error": None,
}


class ActionRefused(errors.Refused):
    """The action cannot be taken; ``str()`` says why in one line."""


class NotFound(ActionRefused, errors.NotFound):
    """No dead letter with that id."""


class InvalidLead(ActionRefused):
    """An edited lead the canonical model refuses; ``problems``: ``(dotted.path, message)`` each."""

    def __init__(self, err: ValidationError) -> None:
        where = [".".join(str(p) for p in e["loc"] if p != "__root__") for e in err.errors()]
        self.problems = [
            (w, e["msg"].removeprefix("Value error, ")) for w, e in zip(where, err.errors(), strict=True)
        ]
        super().__init__(f"the edited lead is not valid: {first_error(err)}")


@dataclass(frozen=True, slots=True)
class Detail:
    letter: DeadLetter
    lead: Lead
    attempts: list[DeliveryAttempt]
    history: list[DeadLetter] = field(default_factory=list)

    @property
    def raw_text(self) -> str:
        body = self.lead.raw_body
        if body is None:
            return "(purged by the retention policy)"
        return body.decode("utf-8", errors="replace")

    @property
    def canonical_json(self) -> str | None:
        return pretty_lead(self.lead.lead)


@dataclass(frozen=True, slots=True)
class Replayed:
    letter_id: int
    lead_id: int
    outcome: str  # queued | duplicate | refused | would_replay
    message: str

    @property
    def enqueue(self) -> bool:
        return self.outcome == "queued"


def detail(session: Session, letter_id: int) -> Detail:
    letter = session.get(DeadLetter, letter_id)
    if letter is None:
        raise NotFound(f"no dead letter {letter_id}")
    lead = session.get(Lead, letter.lead_id)
    assert lead is not None
    attempts = list(
        session.execute(
            select(DeliveryAttempt).where(DeliveryAttempt.lead_id == lead.id).order_by(DeliveryAttempt.id)
        ).scalars()
    )
    history = list(
        session.execute(
            select(DeadLetter)
            .where(DeadLetter.lead_id == lead.id, DeadLetter.id != letter.id)
            .order_by(DeadLetter.id)
        ).scalars()
    )
    return Detail(letter=letter, lead=lead, attempts=attempts, history=history)


def _open_letter(session: Session, letter_id: int) -> tuple[DeadLetter, Lead]:
    letter = session.execute(
        select(DeadLetter).where(DeadLetter.id == letter_id).with_for_update()
    ).scalar_one_or_none()
    if letter is None:
        raise NotFound(f"no dead letter {letter_id}")
    lead = session.execute(select(Lead).where(Lead.id == letter.lead_id).with_for_update()).scalar_one()
    why = refusal(letter, lead)
    if why is not None:
        raise ActionRefused(why)
    return letter, lead


def refusal(letter: DeadLetter, lead: Lead) -> str | None:
    """Why no replay, edit or discard can be taken on this dead letter now; None when one can."""
    if lead.purged_at is not None:
        return (
            f"lead {lead.id}'s personal data was purged ({lead.purged_why}) on {lead.purged_at:%Y-%m-%d}: "
            "there is nothing left to replay or edit; ask the sender to send the lead again"
        )
    if letter.status != DeadLetterStatus.open:
        return (
            f"dead letter {letter.id} is already {letter.status}"
            + (f" ({letter.resolution})" if letter.resolution else "")
            + f"; lead {lead.id} is {lead.state}"
        )
    if lead.state != LeadState.dead:
        return f"lead {lead.id} is {lead.state}, not dead: nothing to replay"
    return None


def _resolve(letter: DeadLetter, *, status: DeadLetterStatus, actor: str, resolution: str) -> None:
    letter.status = status
    letter.resolved_at = utcnow()
    letter.resolved_by = actor
    letter.resolution = resolution


def _route(lead: Lead, routing: Routing) -> dict[str, Any]:
    """Where a replayed lead goes now: the routing file may have been fixed since."""
    if lead.lead is None:
        return {}
    listing = (lead.lead.get("listing") or {}).get("id")
    location = routing.location_for(lead.channel, listing)
    return {"location": location, "account": routing.locations[location].account if location else None}


def replay(
    session: Session, letter_id: int, *, actor: str, routing: Routing, dry_run: bool = False
) -> Replayed:
    """Put a dead lead back in the pipeline: re-read it (parse errors) or re-deliver it."""
    try:
        letter, lead = _open_letter(session, letter_id)
    except NotFound:
        raise
    except ActionRefused as refused:
        letter_row = session.get(DeadLetter, letter_id)
        return Replayed(letter_id, letter_row.lead_id if letter_row else 0, "refused", str(refused))
    if dry_run:
        return Replayed(
            letter.id, lead.id, "would_replay", f"lead {lead.id} ({letter.reason}) would be replayed"
        )
    back_to = LeadState.received if lead.lead is None else LeadState.normalised
    transition(
        session,
        lead.id,
        from_states=[LeadState.dead],
        to=back_to,
        next_attempt_at=utcnow(),
        enqueued_at=utcnow(),
        **_route(lead, routing),
        **RESET_DELIVERY,
    )
    stage = "to be read again" if back_to is LeadState.received else "to be delivered"
    # an unverified sender's mail is not checked again: the admin who replays it has checked it
    overridden = letter.reason == DeadReason.unverified_sender
    resolution = f"replayed by {actor}" + (", the sender check overridden" if overridden else "")
    _resolve(letter, status=DeadLetterStatus.replayed, actor=actor, resolution=resolution)
    audit(
        session,
        actor=actor,
        action="dead_letter.replay",
        target=f"dead_letter:{letter.id}",
        result="queued",
        detail={
            "lead_id": lead.id,
            "reason": letter.reason,
            "back_to": back_to.value,
            **({"sender_check": "overridden"} if overridden else {}),
        },
    )
    note = " (its sender taken as verified by you)" if overridden else ""
    return Replayed(letter.id, lead.id, "queued", f"lead {lead.id} queued {stage}{note}")


def discard(session: Session, letter_id: int, *, actor: str, why: str) -> None:
    """Close a dead letter without delivering it (the lead stays dead)."""
    if not why.strip():
        raise ActionRefused("say why the dead letter is discarded (it goes into the audit log)")
    letter, lead = _open_letter(session, letter_id)
    _resolve(letter, status=DeadLetterStatus.discarded, actor=actor, resolution=why.strip())
    audit(
        session,
        actor=actor,
        action="dead_letter.discard",
        target=f"dead_letter:{letter.id}",
        result="discarded",
        detail={"lead_id": lead.id, "why": why.strip()},
    )


def editable_lead(session: Session, letter_id: int, *, routing: Routing | None = None) -> dict[str, Any]:
    """The canonical lead to edit: the one on record; for a parse error, what the raw item does
    hold (with ``routing``: the field the error names left empty), else an empty form."""
    found = detail(session, letter_id)
    so_far = read_so_far(routing, found.lead) if routing is not None and not found.lead.lead else None
    if found.lead.lead or so_far:
        lead = dict(found.lead.lead or so_far or {})
        for computed in ("channel", "lead_source"):
            lead.pop(computed, None)
        return lead
    return {
        "external_id": None,
        "kind": "enquiry",
        "contact": {"full_name": None, "email": None, "phone": None, "company": None},
        "requirements": {},
        "listing": {"id": None},
        "message": None,
    }


def edit(
    session: Session, letter_id: int, lead_json: dict[str, Any], *, actor: str, routing: Routing
) -> Replayed:
    """Validate an edited canonical lead, dedupe it, and queue it for delivery."""
    letter, lead = _open_letter(session, letter_id)
    if lead.follow_up is not None:
        raise ActionRefused(
            f"lead {lead.id} follows up an enquiry, it is no lead to edit: "
            "replay it once its enquiry is in Nexudus"
        )
    channel = routing.channels.get(lead.channel)
    if channel is None:
        raise ActionRefused(f"channel {lead.channel!r} is not in the routing file any more")
    draft = {**lead_json, "channel": lead.channel, "lead_source": channel.lead_source}
    region = channel.country or "GB"
    listing_id = (draft.get("listing") or {}).get("id") if isinstance(draft.get("listing"), dict) else None
    location = routing.claimed_location(lead.channel, str(listing_id)) if listing_id is not None else None
    if location:
        region = routing.locations[location].country
    try:
        canonical = CanonicalLead.model_validate(draft, context={"region": region})
    except ValidationError as err:
        raise InvalidLead(err) from None
    if canonical.received_at is None:
        canonical = canonical.model_copy(update={"received_at": lead.received_at})
    before = lead.lead
    result = accept(
        session,
        lead,
        canonical,
        routing=routing,
        from_state=LeadState.dead,
        enqueued_at=utcnow(),
        **RESET_DELIVERY,
        **_tag_sent_under(lead, channel),
    )
    outcome = "queued" if result.state is LeadState.normalised else "duplicate"
    message = (
        f"lead {lead.id} edited and queued to be delivered"
        if outcome == "queued"
        else f"lead {lead.id} edited: it is a duplicate of lead {result.duplicate_of}, nothing to deliver"
    )
    if lead.create_sent_at is not None:
        message += f"; a create sent earlier may have reached Nexudus as {lead.opportunity_name!r}" + (
            ": delivery looks it up first and keeps it if it is there" if outcome == "queued" else ""
        )
    _resolve(
        letter, status=DeadLetterStatus.replayed, actor=actor, resolution=f"edited and replayed by {actor}"
    )
    audit(
        session,
        actor=actor,
        action="dead_letter.edit",
        target=f"dead_letter:{letter.id}",
        result=outcome,
        detail={"lead_id": lead.id, "before": before, "after": canonical.to_json_dict()},
    )
    return Replayed(letter.id, lead.id, outcome, message)


def _tag_sent_under(lead: Lead, channel: ChannelConfig) -> dict[str, str]:
    """The Name tag and SystemId a create may have been sent under, kept through the edit.

    A lead marked before the ledger recorded the tag (migration 0007 marks leads
    with an unanswered create, without one) gets it from what it said before the
    edit: the edit may change what the tag would be made of.
    """
    if lead.create_sent_at is None or (lead.opportunity_name and lead.system_id) or not lead.lead:
        return {}
    was = CanonicalLead.from_ledger(lead.lead)
    label = channel_label(lead.channel, channel)
    tag = dedupe.tag_for(was, channel=lead.channel, fingerprint=lead.fingerprint or "", label=label)
    return {"opportunity_name": tag.name, "system_id": tag.system_id}
