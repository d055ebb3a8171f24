"""One client, many brokers: who introduced a person first, and who came later.

Brokers are paid for the introduction that counts, usually the first inside a
protection window (90 days by default). For a person — the same normalised
e-mail, else the same E.164 phone — and a location, the leads received within
the window form a group; the group's **first introduction** is the lead that
holds its opportunity, else its oldest lead still alive (normalised or being
delivered) that is not a twin of another (worker/delivery/enrich.py). It gets the Nexudus
opportunity, with its own LeadSource and AgentId. Every later lead of the group
becomes a note on that opportunity (state ``attached``) and is listed for the
operator, who usually has 24–48 h to reject a competing introduction.

Deciding by arrival order in the ledger — the lowest lead id wins — makes the
choice the same on every worker, however many introductions of one person
arrive at once. The decision is also taken under a per-person advisory lock on
Postgres, so that two workers never act on a half-finished decision.

Same company and a similar name with different contact details is only a
*possible* duplicate: flagged for a person, never merged.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from rapidfuzz import fuzz
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from leadrelay.canonical import CanonicalLead
from leadrelay.db import insert_for, utcnow
from leadrelay.driver import Unit, as_unit
from leadrelay.ledger.introduced import Person, first_introduction, locking, person_params
from leadrelay.models import Lead, LeadState, PossibleDuplicate
from leadrelay.nexudus.payloads import channel_label
from leadrelay.routing import Routing
from leadrelay.statements import checked

SIMILAR_NAME = 85  # rapidfuzz token_sort_ratio, 0–100
CANDIDATES = 500
_LEGAL_FORMS = re.compile(
    r"\b(ltd|limited|llp|llc|inc|incorporated|plc|gmbh|ag|ug|kg|sarl|sas|bv|nv|co|company|corp|corporation)\b\.?"
)


def company_key(company: str | None) -> str | None:
    """A company name for comparison: accents, case, punctuation and legal form ignored."""
    if not company:
        return None
    ascii_name = unicodedata.normalize("NFKD", company).encode("ascii", "ignore").decode().lower()
    ascii_name = ascii_name.replace("&", " and ")
    words = re.sub(r"[^a-z0-9 ]+", " ", _LEGAL_FORMS.sub(" ", ascii_name)).split()
    return " ".join(words)[:200] or None


def lock_person(session: Session | Unit, identity: str, location: str) -> None:
    """Serialise decisions about one person at one location (Postgres; SQLite serialises anyway)."""
    work = as_unit(session)
    if work.postgres:
        work.execute(*locking(identity, location))


def protection(routing: Routing, channel: str, account: str | None) -> timedelta:
    return timedelta(days=routing.protection_days(channel, account))


def person_of(lead: Introduced, routing: Routing) -> Person | None:
    """The lead's person at its location, and its protection window's start; None without both."""
    if not lead.identity or not lead.location:
        return None
    since = lead.received_at - protection(routing, lead.channel, lead.account)
    return Person(lead.identity, lead.location, since)


@dataclass(frozen=True, slots=True)
class Relation:
    first: int | None  # None: this lead is the first introduction

    @property
    def is_first(self) -> bool:
        return self.first is None


class Introduced(Protocol):
    """What deciding an introduction reads of a lead (a ``Lead``, or a row of these columns)."""

    @property
    def id(self) -> int: ...
    @property
    def identity(self) -> str | None: ...
    @property
    def location(self) -> str | None: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def channel(self) -> str: ...
    @property
    def account(self) -> str | None: ...
    @property
    def first_introduction(self) -> int | None: ...


_FIRST_INTRODUCTION = first_introduction()  # built once (every delivery)


_LEAD_ID = bindparam("_id", type_=Lead.__table__.c["id"].type)
# held for delivery by this run: the reading's lease has the same owner, and a claim that a crash
# of Postgres took back leaves the lead received under it (docs/guarantees.md)
_OWNED = (Lead.id == _LEAD_ID) & checked(
    Lead.state == LeadState.delivering, Lead.lease_owner == bindparam("_owner")
)
# the decision written (a first introduction points at itself), by the run holding the lease
_MARK = (
    update(Lead)
    .where(_OWNED)
    .values(first_introduction=bindparam("_first", type_=Lead.__table__.c["first_introduction"].type))
)


def _first_and_mark() -> Any:
    """Postgres: the first introduction found and the decision written, in one statement."""
    first = _FIRST_INTRODUCTION.cte("first_introduction")
    found = select(first.c.id).scalar_subquery()
    decided = func.coalesce(found, _LEAD_ID)
    marked = (
        update(Lead)
        .where(_OWNED, Lead.first_introduction.is_distinct_from(decided))
        .values(first_introduction=decided)
        .returning(Lead.id)
        .cte("marked")
    )
    return select(found).add_cte(marked)


_FIRST_AND_MARK = _first_and_mark()


def relate(
    session: Session | Unit, lead: Introduced, *, routing: Routing, mark: str | None = None
) -> Relation:
    """Is ``lead`` the first introduction of its person here, or a later one (of which)?

    ``mark``: the owner of the lead's delivery lease. The decision is then also
    written to the lead's ``first_introduction`` while that lease holds (on
    Postgres by the statement that finds the first introduction: one round trip).
    """
    work = as_unit(session)
    person = person_of(lead, routing)
    if person is None:
        _mark(work, lead, mark, decided=lead.id)
        return Relation(first=None)
    lock_person(work, person.identity, person.location)
    params = person_params(person)
    if mark is not None and work.postgres:
        params.update(_id=lead.id, _owner=mark)
        rows = work.execute(_FIRST_AND_MARK, params)
    else:
        rows = work.execute(_FIRST_INTRODUCTION, params)
        _mark(work, lead, mark, decided=rows[0][0] if rows else lead.id)
    first = rows[0][0] if rows else None
    return Relation(first=None if first in (None, lead.id) else first)


def _mark(work: Unit, lead: Introduced, owner: str | None, *, decided: int) -> None:
    if owner is not None and decided != lead.first_introduction:
        work.execute(_MARK, {"_id": lead.id, "_owner": owner, "_first": decided})


# built once (every lead with a company and a name is compared)
SAME_COMPANY = (
    select(Lead.id, Lead.lead)
    .where(
        Lead.location == bindparam("_location"),
        Lead.company_key == bindparam("_company"),
        Lead.identity != bindparam("_identity"),
        Lead.id != bindparam("_id"),
        Lead.received_at >= bindparam("_since", type_=Lead.__table__.c["received_at"].type),
        Lead.state.not_in([LeadState.duplicate, LeadState.ignored]),
    )
    .order_by(Lead.id.desc())
    .limit(CANDIDATES)
)


class Compared(Introduced, Protocol):
    """What the same-company comparison reads of a lead, beside :class:`Introduced`."""

    @property
    def company_key(self) -> str | None: ...


def same_company(lead: Compared, canonical: CanonicalLead, *, routing: Routing) -> dict[str, Any] | None:
    """The values of :data:`SAME_COMPANY` for a lead as read; None without a company, a name or a place."""
    key, name = lead.company_key, canonical.contact.full_name
    if not key or not name or not lead.location:
        return None
    since = lead.received_at - protection(routing, lead.channel, lead.account)
    return {
        "_location": lead.location,
        "_company": key,
        "_identity": lead.identity,
        "_id": lead.id,
        "_since": since,
    }


def flag_possible_duplicates(
    session: Session,
    lead: Lead,
    canonical: CanonicalLead,
    *,
    routing: Routing,
    others: Sequence[Sequence[Any]] | None = None,
) -> list[int]:
    """Leads of the same company and a similar name but other contact details: flag, never merge.

    ``others``: what :data:`SAME_COMPANY` found for the lead, when the caller ran it
    with the lead's move (``ledger.transition_then``); else it runs here.
    """
    name = canonical.contact.full_name
    if others is None:
        params = same_company(lead, canonical, routing=routing)
        if params is None:
            return []
        others = as_unit(session).execute(SAME_COMPANY, params)
    if not name:
        return []
    flagged = []
    for other_id, other in others:
        other_name = ((other or {}).get("contact") or {}).get("full_name")
        if not other_name:
            continue
        score = fuzz.token_sort_ratio(name.casefold(), other_name.casefold())
        if score < SIMILAR_NAME:
            continue
        session.execute(
            insert_for(session, PossibleDuplicate)
            .values(lead_id=lead.id, other_lead_id=other_id, score=round(score, 1), created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["lead_id", "other_lead_id"])
        )
        flagged.append(other_id)
    return flagged


@dataclass(frozen=True, slots=True)
class Competing:
    """A later introduction, set against the first one."""

    lead: Lead
    first: Lead
    deadline: datetime

    @property
    def time_left(self) -> timedelta:
        return self.deadline - utcnow()


def competing(session: Session, *, rejection_hours: int, include_expired: bool = False) -> list[Competing]:
    """Later introductions, with the time left to reject them with the portal."""
    later = list(
        session.execute(
            select(Lead)
            .where(Lead.first_introduction.is_not(None), Lead.first_introduction != Lead.id)
            .order_by(Lead.received_at.desc())
        ).scalars()
    )
    firsts = {
        row.id: row
        for row in session.execute(
            select(Lead).where(Lead.id.in_({lead.first_introduction for lead in later}))
        ).scalars()
    }
    now, window = utcnow(), timedelta(hours=rejection_hours)
    rows = [
        Competing(lead, firsts[lead.first_introduction], lead.received_at + window)
        for lead in later
        if lead.first_introduction in firsts
    ]
    return [row for row in rows if include_expired or row.deadline > now]


def describe(routing: Routing, lead: Lead) -> str:
    """``HubbleHq enq_8F2KQ7XW`` for a lead: its portal and reference."""
    config = routing.channels.get(lead.channel)
    label = channel_label(lead.channel, config) if config else lead.channel
    return f"{label} {lead.external_id or '#' + str(lead.id)}"


def possible_duplicates(session: Session, *, limit: int = 200) -> list[tuple[PossibleDuplicate, Lead, Lead]]:
    rows = session.execute(
        select(PossibleDuplicate).order_by(PossibleDuplicate.created_at.desc()).limit(limit)
    ).scalars()
    found = []
    for flag in rows:
        lead, other = session.get(Lead, flag.lead_id), session.get(Lead, flag.other_lead_id)
        if lead is not None and other is not None:
            found.append((flag, lead, other))
    return found
