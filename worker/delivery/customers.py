"""The customer: the Coworker a lead's contact is in Nexudus, found or created.

The ledger caches each e-mail's coworker id per account; an entry is written with
the run's next ledger write (lost with a killed worker: found again).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from leadrelay import ledger
from leadrelay.db import utcnow
from leadrelay.driver import Unit, as_unit
from leadrelay.models import CoworkerCache
from leadrelay.nexudus.classify import Result
from leadrelay.nexudus.client import NexudusClient
from leadrelay.nexudus.payloads import Route, coworker_payload
from leadrelay.statements import per_dialect
from leadrelay.worker.delivery.attempts import Hold

# built once (every delivery with an e-mail asks); a Core row, not an ORM object to load
_CACHED = select(CoworkerCache.__table__.c.coworker_id).where(
    CoworkerCache.__table__.c.account == bindparam("_account"),
    CoworkerCache.__table__.c.email == bindparam("_email"),
)


def cached(session: Session | Unit, account: str, email: str | None) -> int | None:
    """The cached coworker id of the contact's e-mail, if any."""
    if not email:
        return None
    rows = as_unit(session).execute(_CACHED, {"_account": account, "_email": email})
    return int(rows[0][0]) if rows else None


def find_or_create(hold: Hold, client: NexudusClient, route: Route) -> tuple[int, bool] | Result:
    """The customer's id, and whether Nexudus knew them before this lead."""
    email = hold.s.lead.contact.email
    if email:
        found = hold.call("coworker.find", lambda guard: client.find_coworker(email, guard=guard))
        if not found.ok:
            return found
        if found.value is not None:
            _remember(hold, route.account, email, found.value)
            return int(found.value), True
    body = coworker_payload(hold.s.lead, route)
    created = hold.call("coworker.create", lambda guard: client.create_coworker(body, guard=guard))
    if not created.ok:
        return created
    if email:
        _remember(hold, route.account, email, created.value)
    return int(created.value), False


def _remember(hold: Hold, account: str, email: str, coworker_id: int) -> None:
    """A cache entry: written with the run's next ledger write (lost with a killed worker: found again)."""

    params = {"_account": account, "_email": email, "_coworker": coworker_id, "_at": utcnow()}
    hold.later(ledger.SideWrite(_cache_entry, params))


@per_dialect
def _cache_entry(postgres: bool) -> Any:
    """An entry written or replaced: built once per database kind."""
    columns = CoworkerCache.__table__.c
    stmt = (postgresql.insert if postgres else sqlite.insert)(CoworkerCache).values(
        account=bindparam("_account", type_=columns["account"].type),
        email=bindparam("_email", type_=columns["email"].type),
        coworker_id=bindparam("_coworker", type_=columns["coworker_id"].type),
        updated_at=bindparam("_at", type_=columns["updated_at"].type),
    )
    return stmt.on_conflict_do_update(
        index_elements=["account", "email"],
        set_={"coworker_id": stmt.excluded.coworker_id, "updated_at": stmt.excluded.updated_at},
    )


def forget(hold: Hold, account: str) -> None:
    """Drop the contact's cache entry (the coworker it names may have been deleted)."""
    email = hold.s.lead.contact.email
    if not email:
        return
    with hold.tx() as session:
        session.execute(
            delete(CoworkerCache).where(CoworkerCache.account == account, CoworkerCache.email == email)
        )
