"""Is this lead one we already have? Decided in the ledger, safe under concurrency.

A lead claims its dedupe keys — the portal reference (``ref:<channel>:<id>``) and
its content fingerprint (``content:<sha256>``) — with INSERT … ON CONFLICT DO
NOTHING. The first lead to claim a key owns it; a later lead that finds any key
owned by another lead is a duplicate of that lead. On Postgres a concurrent
claimant blocks on the uncommitted insert until the owner's transaction ends, so
two workers cannot both win. Keys are claimed in sorted order so that two leads
sharing several keys cannot deadlock.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from leadrelay.canonical import CanonicalLead
from leadrelay.db import utcnow
from leadrelay.driver import as_unit
from leadrelay.ledger import CreateTag, audit
from leadrelay.models import DeadLetter, DeadLetterStatus, DedupeKey, Lead, LeadState
from leadrelay.nexudus import mapping
from leadrelay.nexudus.payloads import NAME_LIMIT, opportunity_name
from leadrelay.statements import PerDialect

_VOLATILE = ("received_at", "channel", "lead_source")


def fingerprint(lead: CanonicalLead) -> str:
    """A hash of what the lead says, ignoring when and through which door it came."""
    content = lead.model_dump(mode="json", exclude=set(_VOLATILE))
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def keys_for(lead: CanonicalLead, *, channel: str, fingerprint: str) -> list[str]:
    keys = [f"content:{channel}:{fingerprint}"]
    if lead.external_id:
        keys.append(f"ref:{channel}:{lead.external_id}")
    return sorted(keys)


def system_id(lead: CanonicalLead, *, channel: str, fingerprint: str) -> str:
    """The lead's stable identity outside the ledger (Nexudus ``SystemId``)."""
    reference = lead.external_id or fingerprint[:24]
    return f"leadrelay:{channel}:{reference}"[:200]


def tag_for(
    lead: CanonicalLead,
    *,
    channel: str,
    fingerprint: str,
    label: str,
    template: str | None = None,
    location: str = "",
) -> CreateTag:
    """The Name tag and SystemId an opportunity made for this lead is created under
    (``template``: the configured Name, ``leadrelay.routing.mapping``)."""
    reference = lead.external_id or fingerprint[:12]
    name = opportunity_name(label, reference)
    if template is not None:
        made = mapping.opportunity_name(
            template, lead, label=label, reference=reference, channel=channel, location=location
        )
        name = made[:NAME_LIMIT] or name
    return CreateTag(name, system_id(lead, channel=channel, fingerprint=fingerprint))


@dataclass(frozen=True, slots=True)
class Verdict:
    duplicate_of: int | None  # None: this lead is the primary


MOST_KEYS = 2  # keys_for gives a content key and, when the portal names one, a reference key


def _claim_statement(count: int) -> PerDialect:
    """Claim ``count`` keys in one statement (their rows in the order given); RETURNING the won ones."""

    def build(postgres: bool) -> Any:
        columns = DedupeKey.__table__.c
        insert = postgresql.insert if postgres else sqlite.insert
        lead = bindparam("_lead", type_=columns["lead_id"].type)
        at = bindparam("_at", type_=columns["created_at"].type)
        rows = [
            {"key": bindparam(f"_key{n}", type_=columns["key"].type), "lead_id": lead, "created_at": at}
            for n in range(count)
        ]
        return (
            insert(DedupeKey)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(DedupeKey.key)
        )

    # a multi-row VALUES: SQLAlchemy would compile it on every run; the driver compiles it once
    return PerDialect(build)


_CLAIMS = {count: _claim_statement(count) for count in range(1, MOST_KEYS + 1)}  # built once each


def claim(
    session: Session, lead_id: int, keys: list[str], *, won_before: frozenset[str] = frozenset()
) -> Verdict:
    """Claim ``keys`` for ``lead_id``; report the lead that already owns one, if any.

    One statement claims them all (in their sorted order, so that two leads sharing
    several keys cannot deadlock). A key it did not win was taken, after waiting for
    its owner's transaction: who holds it is read then, key by key, in a statement of
    its own (a later one, whose snapshot sees that transaction's outcome).
    ``won_before``: the keys an earlier pass of this claim won (it then met a dead owner).
    """
    won = _claim_keys(session, lead_id, keys) | won_before
    owner: int | None = None
    for key in keys:
        if key in won:
            continue
        holder = session.execute(select(DedupeKey.lead_id).where(DedupeKey.key == key)).scalar_one()
        if holder != lead_id:
            owner = holder
            break
    taken = [key for key in keys if key in won]
    if owner is None:
        return Verdict(duplicate_of=None)
    if _supersede_dead(session, old=owner, new=lead_id):
        return claim(session, lead_id, keys, won_before=frozenset(taken))  # what this pass won stays won
    # A duplicate must not keep the keys it claimed here before meeting the owner. Keys
    # it held before (an edited lead's first reading) stay: a later copy of what it was
    # then is still recognised as it.
    if taken:
        session.execute(delete(DedupeKey).where(DedupeKey.lead_id == lead_id, DedupeKey.key.in_(taken)))
    return Verdict(duplicate_of=owner)


def _claim_keys(session: Session, lead_id: int, keys: list[str]) -> set[str]:
    """Insert what is free of ``keys`` for ``lead_id``; the keys won (up to MOST_KEYS a statement)."""
    won: set[str] = set()
    for start in range(0, len(keys), MOST_KEYS):
        chunk = keys[start : start + MOST_KEYS]
        params: dict[str, Any] = {f"_key{n}": key for n, key in enumerate(chunk)}
        params.update(_lead=lead_id, _at=utcnow())
        won.update(row[0] for row in as_unit(session).execute(_CLAIMS[len(chunk)], params))
    return won


def _supersede_dead(session: Session, *, old: int, new: int) -> bool:
    """A dead primary gives its keys to a fresh copy of itself (a partner's corrected resend).

    The copy carries the enquiry on: if a create may have happened for the dead
    lead, the copy inherits that mark and the Name tag and SystemId it was sent
    under, so it looks the opportunity up before creating another.
    """
    state, sent_at, name, system_id = session.execute(
        select(Lead.state, Lead.create_sent_at, Lead.opportunity_name, Lead.system_id)
        .where(Lead.id == old)
        .with_for_update()
    ).one()
    if state != LeadState.dead:
        return False
    session.execute(update(DedupeKey).where(DedupeKey.lead_id == old).values(lead_id=new))
    if sent_at is not None:
        session.execute(
            update(Lead)
            .where(Lead.id == new, Lead.create_sent_at.is_(None))  # an edited lead keeps its own
            .values(create_sent_at=sent_at, opportunity_name=name, system_id=system_id)
            .execution_options(synchronize_session=False)
        )
    now = utcnow()
    session.execute(
        update(DeadLetter)
        .where(DeadLetter.lead_id == old, DeadLetter.status == DeadLetterStatus.open)
        .values(
            status=DeadLetterStatus.superseded,
            resolved_at=now,
            resolved_by="system",
            resolution=f"superseded by lead {new}, a later delivery of the same enquiry",
        )
    )
    audit(
        session,
        actor="system",
        action="dead_letter.supersede",
        target=f"lead:{old}",
        result="superseded",
        detail={"by_lead": new, "create_may_have_happened": sent_at is not None},
    )
    return True
