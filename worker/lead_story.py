"""A lead's whole story for one page: what came in, what it became, every decision and call.

The raw input (taken apart by worker/raw_input.py), the canonical lead, the dedupe
decision (each of its keys and the lead that owns it), the attribution decision (first
or later introduction of its person at its location, and the broker's AgentId), every
Nexudus call, its dead letters, and the audit entries about it or its dead letters.
Each list is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from leadrelay.models import AuditEntry, DeadLetter, DedupeKey, DeliveryAttempt, Lead, PossibleDuplicate
from leadrelay.routing import Routing
from leadrelay.worker.raw_input import RawInput, read_raw

RELATED = 50  # leads listed as duplicates or later introductions of this one
AUDIT = 200
ATTEMPTS = 500


@dataclass(frozen=True, slots=True)
class KeyClaim:
    key: str
    owner: int | None  # the lead that owns it; None: nobody (this lead never claimed it)

    @property
    def kind(self) -> str:
        return "portal reference" if self.key.startswith("ref:") else "content fingerprint"


@dataclass(frozen=True, slots=True)
class Attribution:
    identity: str | None
    location: str | None
    first: int | None  # the group's first introduction (this lead's own id when it is)
    later: list[int]  # later introductions attached to this one
    protection_days: int | None
    agent_id: int | None

    @property
    def decided(self) -> bool:
        return self.first is not None


@dataclass(frozen=True, slots=True)
class Story:
    lead: Lead
    raw: RawInput
    keys: list[KeyClaim]
    duplicates: list[int]  # leads found to be duplicates of this one
    attribution: Attribution
    possible: list[tuple[int, float]]  # possible duplicates (other lead, similarity)
    attempts: list[DeliveryAttempt]
    letters: list[DeadLetter]
    audit: list[AuditEntry]


def dedupe_keys(lead: Lead) -> list[str]:
    """The keys the lead claims (worker/dedupe.keys_for), from what the ledger kept of it."""
    keys = [f"content:{lead.channel}:{lead.fingerprint}"] if lead.fingerprint else []
    if lead.external_id:
        keys.append(f"ref:{lead.channel}:{lead.external_id}")
    return sorted(keys)


def _claims(session: Session, lead: Lead) -> list[KeyClaim]:
    wanted = dedupe_keys(lead)
    rows = session.execute(
        select(DedupeKey.key, DedupeKey.lead_id).where(
            or_(DedupeKey.key.in_(wanted), DedupeKey.lead_id == lead.id)
        )
    ).all()
    owners = {key: owner for key, owner in rows}
    return [KeyClaim(key, owners.get(key)) for key in sorted({*wanted, *owners})]


def _attribution(session: Session, lead: Lead, routing: Routing) -> Attribution:
    later = session.execute(
        select(Lead.id)
        .where(Lead.first_introduction == lead.id, Lead.id != lead.id)
        .order_by(Lead.id)
        .limit(RELATED)
    ).scalars()
    agent = None
    if lead.location in routing.locations and lead.channel in routing.channels:
        agent = routing.agent_id(lead.channel, lead.location)
    return Attribution(
        identity=lead.identity,
        location=lead.location,
        first=lead.first_introduction,
        later=list(later),
        protection_days=routing.protection_days(lead.channel, lead.account) if lead.identity else None,
        agent_id=agent,
    )


def _audit(session: Session, lead: Lead, letters: list[DeadLetter]) -> list[AuditEntry]:
    targets = [f"lead:{lead.id}", *(f"dead_letter:{d.id}" for d in letters)]
    return list(
        session.execute(
            select(AuditEntry).where(AuditEntry.target.in_(targets)).order_by(AuditEntry.id).limit(AUDIT)
        ).scalars()
    )


def story(session: Session, lead_id: int, routing: Routing) -> Story | None:
    lead = session.get(Lead, lead_id)
    if lead is None:
        return None
    attempts = session.execute(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.lead_id == lead_id)
        .order_by(DeliveryAttempt.id)
        .limit(ATTEMPTS)
    ).scalars()
    letters = list(
        session.execute(
            select(DeadLetter).where(DeadLetter.lead_id == lead_id).order_by(DeadLetter.id)
        ).scalars()
    )
    duplicates = session.execute(
        select(Lead.id).where(Lead.duplicate_of == lead_id).order_by(Lead.id).limit(RELATED)
    ).scalars()
    flags = session.execute(
        select(PossibleDuplicate.other_lead_id, PossibleDuplicate.lead_id, PossibleDuplicate.score)
        .where(or_(PossibleDuplicate.lead_id == lead_id, PossibleDuplicate.other_lead_id == lead_id))
        .limit(RELATED)
    ).all()
    return Story(
        lead=lead,
        raw=read_raw(lead.raw_body, lead.content_type),
        keys=_claims(session, lead),
        duplicates=list(duplicates),
        attribution=_attribution(session, lead, routing),
        possible=[(other if mine == lead_id else mine, float(score)) for other, mine, score in flags],
        attempts=list(attempts),
        letters=letters,
        audit=_audit(session, lead, letters),
    )
