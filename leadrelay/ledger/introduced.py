"""Who introduced a person first: the query the decision runs (worker/introductions.py says why).

Here, below the worker, because the delivery's claim can make the decision in its own
statement (:func:`leadrelay.ledger.claim` with a :class:`Person`), and the decision
after a claim (``introductions.relate``) runs the same query.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, case, select, text
from sqlalchemy.orm import aliased

from leadrelay.models import Lead, LeadState
from leadrelay.statements import checked

ALIVE = (LeadState.normalised, LeadState.delivering, LeadState.delivered)


@dataclass(frozen=True, slots=True)
class Person:
    """A person at a location, whose decisions the caller has serialised (:func:`locking`).

    ``since``: the start of the lead's protection window (its ``received_at`` less the window).
    """

    identity: str
    location: str
    since: datetime


def first_introduction(*, nested: bool = False) -> Select[Any]:
    """The person's first introduction (``_identity``, ``_location``, ``_since``): one id, or none.

    The one holding the opportunity wins: a dead first introduction replayed later must
    not take over from the lead delivered in its place. Next, one already decided first
    (it points at itself, set under the person's lock): an older lead normalised later
    must not also decide it is first while that one sends. ``nested``: over an alias of
    ``leads``, for a subquery inside a statement that updates ``leads`` itself.
    """
    leads = aliased(Lead, name="introduced") if nested else Lead
    delivered_first = case(
        (leads.state == LeadState.delivered, 0), (leads.first_introduction == leads.id, 1), else_=2
    )
    return (
        select(leads.id)
        .where(
            # found by the person's identity alone (the rest checked on what it finds): an
            # index on the location, the state or the time read every lead it shares them with.
            # The price: a person's leads at every location are read (a handful; an address
            # that enquires everywhere has all its leads read, where the location narrowed it)
            leads.identity == bindparam("_identity"),
            checked(
                leads.location == bindparam("_location"),
                leads.state.in_([s.value for s in ALIVE]),
                leads.received_at >= bindparam("_since", type_=Lead.__table__.c["received_at"].type),
                # a twin (read as a duplicate, delivered as an enrichment) holds no opportunity and
                # waits for its enquiry's: taken for the first introduction, the two would wait for
                # each other for ever
                leads.duplicate_of.is_(None),
            ),
        )
        .order_by(delivered_first, leads.id)
        .limit(1)
    )


_PERSON_LOCK = text("SELECT pg_advisory_xact_lock(:a, :b)")


def locking(identity: str, location: str) -> tuple[Any, dict[str, Any]]:
    """The statement (Postgres) that serialises decisions about one person at one location.

    An advisory lock held until the transaction ends; taken after the account's room
    lock (``worker.dispatch.holding_room``) wherever both are taken.
    """
    return _PERSON_LOCK, {"a": 7012, "b": zlib.crc32(f"{identity}|{location}".encode()) - 2**31}


def person_params(person: Person) -> dict[str, Any]:
    return {"_identity": person.identity, "_location": person.location, "_since": person.since}
