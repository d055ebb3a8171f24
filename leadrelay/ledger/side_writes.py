"""Writes to rows beside the lead's, which may ride in the statement that renews its lease or settles it.

A delivery run leaves some writes for its next transaction: the attempt row of a
request that has been answered, the coworker-cache entry of a customer found or
made. Each is one prebuilt INSERT or UPDATE of a row that is not the lead's
(:class:`SideWrite`). Called with a session, one runs as its own statement in
the caller's transaction. On Postgres, :func:`carried` puts them in another
statement instead, each as a data-modifying CTE (``WITH w0 AS (UPDATE …),
w1 AS (INSERT …) <the statement>``): one round trip and one commit instead of
a ``BEGIN``, a statement each and a ``COMMIT``. Postgres runs every such CTE to
completion, once, whether or not the statement reads it, all in one snapshot and
atomically with the statement — what the transaction gave. A write to the lead's
own row must not be one: two updates of one row in one statement are not
defined (that is why the writes to the lead's row stay plain callables). A write
to other leads' rows may, if it says so (``other_leads``) and its statement
excludes the lead's row itself: the follow-ups a settling wakes
(:func:`leadrelay.worker.follow_ups.wake_write`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter

from leadrelay.driver import Unit, as_unit
from leadrelay.models import Lead
from leadrelay.statements import PerDialect


@dataclass(frozen=True, slots=True)
class SideWrite:
    """One prebuilt INSERT or UPDATE (or one per database kind) of a row beside the lead's, and its values."""

    statement: Any
    params: Mapping[str, Any]
    # writes leads' rows, never the carrying statement's lead: its WHERE excludes ``_id``, which
    # must be that lead's (carried() checks)
    other_leads: bool = False

    def __call__(self, session: Session | Unit) -> None:
        as_unit(session).execute(self.statement, self.params)

    def postgres_statement(self) -> Any:
        return self.statement.build(True) if isinstance(self.statement, PerDialect) else self.statement


# (the carrying statement, the side writes' statements, by identity) -> the combined statement,
# and those statements themselves (kept alive: an id is never reused for another while cached).
# Few combinations exist (all of them prebuilt, module-level), so this stays small.
_CARRIED: dict[tuple[int, ...], tuple[Any, tuple[Any, ...]]] = {}


def carried(stmt: Any, params: Mapping[str, Any], writes: Sequence[SideWrite]) -> tuple[Any, dict[str, Any]]:
    """Postgres: ``stmt`` with each write as a CTE before it, and the values of all of them."""
    statements = [write.postgres_statement() for write in writes]
    for write in writes:  # other leads' rows: the statement excludes this lead's row by its id
        if write.other_leads and write.params.get("_id") != params.get("_id"):
            raise ValueError("a write to other leads' rows names the carrying statement's lead as _id")
    key = (id(stmt), *map(id, statements), *(write.other_leads for write in writes))
    found = _CARRIED.get(key)
    if found is None:
        ctes = [
            _renamed(s, f"w{n}_", other_leads=w.other_leads).cte(f"w{n}")
            for n, (s, w) in enumerate(zip(statements, writes, strict=True))
        ]
        found = _CARRIED[key] = (stmt.add_cte(*ctes), (stmt, *statements))
    combined = found[0]
    values = dict(params)
    for n, write in enumerate(writes):
        values.update({f"w{n}_{name}": value for name, value in write.params.items()})
    return combined, values


def _renamed(stmt: Any, prefix: str, *, other_leads: bool = False) -> Any:
    """A copy of ``stmt`` whose named parameters carry ``prefix`` (two writes may name theirs alike)."""
    on_leads = getattr(getattr(stmt, "table", None), "name", None) == Lead.__tablename__  # ORM-annotated
    if on_leads and not other_leads:
        raise ValueError("a write to a lead's row is never carried (see leadrelay.ledger.side_writes)")

    def rename(element: Any, **_: Any) -> Any:
        if not isinstance(element, BindParameter) or element.unique:
            return None  # an anonymous one (a constant) is unique: named apart at compile time
        if element.value is not None or element.callable is not None or element.expanding:
            raise ValueError(f"a side write's parameters are plain named values, not {element.key!r}")
        return bindparam(prefix + element.key, type_=element.type)

    return visitors.replacement_traverse(stmt, {}, rename)
