"""Guarded state changes: a lead moves only if it is still where the caller saw it.

Every transition is one UPDATE whose WHERE clause states what must still be
true (the state, the lease owner); ``rowcount == 1`` means this caller won.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, String, any_, bindparam, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ClauseElement

from leadrelay.db import utcnow
from leadrelay.driver import Unit, as_unit, session_of
from leadrelay.ledger.side_writes import SideWrite, carried
from leadrelay.models import DeadLetter, DeadReason, Lead, LeadState
from leadrelay.statements import checked, unflushed


def transition(
    session: Session | Unit,
    lead_id: int,
    *,
    from_states: Iterable[LeadState],
    to: LeadState,
    owner: str | None = None,
    now: datetime | None = None,
    side_writes: Sequence[SideWrite] = (),
    flushed: bool = True,
    **values: Any,
) -> bool:
    """Move a lead to ``to`` if it is still in one of ``from_states`` (and leased by ``owner``).

    ``side_writes`` are written with it (:mod:`~leadrelay.ledger.side_writes`): on Postgres
    in the same statement, whether or not the lead moved; elsewhere, or when a value is
    an SQL expression, each as its own statement first — atomic with the move only in a
    transaction, so a caller passing both runs this in one.

    ``flushed=False``: on Postgres the move's commit (its transaction's) does not wait for
    the disk (:data:`leadrelay.statements.UNFLUSHED_CLAUSE`); for a move whose loss in a
    crash of Postgres the next run makes good (docs/guarantees.md says which).
    """
    at = now or utcnow()
    states = [s.value for s in from_states]
    work = as_unit(session)
    expressions = any(isinstance(v, ClauseElement) for v in values.values())
    if side_writes and (expressions or not work.postgres):
        for write in side_writes:
            write(work)
        side_writes = ()
    if expressions:
        guards = [Lead.state.in_(states), *([Lead.lease_owner == owner] if owner is not None else [])]
        stmt = update(Lead).where(Lead.id == lead_id, checked(*guards))
        result = session_of(work).execute(
            stmt.values(state=to, state_changed_at=at, **values).execution_options(synchronize_session=False)
        )
        # an UPDATE's result is a CursorResult (Session.execute is typed as returning any Result)
        return cast(CursorResult[Any], result).rowcount == 1
    params = {f"v_{k}": v for k, v in values.items()}
    params.update(_id=lead_id, _from=states, _to=to, _at=at)
    if owner is not None:
        params["_owner"] = owner
    stmt = _transition_statement(work.postgres, owner is not None, tuple(values), flushed=flushed)
    if side_writes:
        stmt, params = carried(stmt, params, side_writes)
    return work.execute(stmt, params).rowcount == 1


def transition_then(
    session: Session | Unit,
    lead_id: int,
    *,
    then: tuple[Any, Mapping[str, Any]],
    from_states: Iterable[LeadState],
    to: LeadState,
    now: datetime | None = None,
    **values: Any,
) -> Sequence[Sequence[Any]]:
    """:func:`transition`, then the read ``then`` (a SELECT and its values): its rows.

    On Postgres the two are one statement, one round trip: the move goes in a WITH,
    which runs whether or not the read looks at it, and the read's snapshot is the
    statement's, taken before the move (it sees the lead as it was). Elsewhere, or
    with an SQL expression among the values, one after the other. Whether the lead
    moved is not said: for a caller that holds the lead's row lock, where it cannot
    fail to. A value the two share must be the same in both. ``read`` is built once
    (a module's constant): the statement made of it is kept for every later call.
    No lease owner guards the move, and its commit waits for the disk unless its
    transaction says otherwise (:func:`transition`'s ``owner``, ``flushed`` and
    ``side_writes`` are refused).
    """
    if refused := sorted(values.keys() & {"owner", "flushed", "side_writes"}):
        raise TypeError(f"transition_then takes no {', '.join(refused)} (transition does)")
    read, read_values = then
    states, at = [s.value for s in from_states], now or utcnow()
    params: dict[str, Any] = {f"v_{k}": v for k, v in values.items()}
    params.update(_id=lead_id, _from=states, _to=to, _at=at)
    shared = read_values.keys() & params.keys()
    differ = [k for k in shared if isinstance(params[k], ClauseElement) or params[k] != read_values[k]]
    if clash := sorted(differ):
        raise ValueError(f"the read and the move give {', '.join(clash)} different values")
    work = as_unit(session)
    if not work.postgres or any(isinstance(v, ClauseElement) for v in values.values()):
        transition(work, lead_id, from_states=from_states, to=to, now=at, **values)
        return work.execute(read, read_values)
    key = (tuple(values), read)
    stmt = _THEN.get(key)
    if stmt is None:
        stmt = _THEN[key] = read.add_cte(_transition_statement(True, False, tuple(values)).cte("moved"))
    return work.execute(stmt, {**params, **read_values})


_THEN: dict[tuple[tuple[str, ...], Any], Any] = {}

# The hot UPDATEs are built once with bound parameters and reused: building and
# cache-keying a new statement per call cost more CPU than the round trip itself.
_TRANSITIONS: dict[tuple[bool, bool, tuple[str, ...], bool], Any] = {}
_LEAD_COLUMNS = Lead.__table__.c


def _transition_statement(
    postgres: bool, guard_owner: bool, names: tuple[str, ...], *, flushed: bool = True
) -> Any:
    unflushed_commit = postgres and not flushed
    key = (postgres, guard_owner, names, unflushed_commit)
    stmt = _TRANSITIONS.get(key)
    if stmt is None:
        # Postgres: the states as one array (an IN list is compiled anew for each length)
        in_states = (
            Lead.state == any_(bindparam("_from", type_=postgresql.ARRAY(String())))
            if postgres
            else Lead.state.in_(bindparam("_from", expanding=True))
        )
        guards = [in_states, *([Lead.lease_owner == bindparam("_owner")] if guard_owner else [])]
        stmt = update(Lead).where(Lead.id == bindparam("_id"), checked(*guards))
        if unflushed_commit:
            stmt = unflushed(stmt)
        sets = {
            "state": bindparam("_to", type_=_LEAD_COLUMNS["state"].type),
            "state_changed_at": bindparam("_at", type_=_LEAD_COLUMNS["state_changed_at"].type),
        }
        sets.update({n: bindparam(f"v_{n}", type_=_LEAD_COLUMNS[n].type) for n in names})
        stmt = _TRANSITIONS[key] = stmt.values(sets)
    return stmt


def release(
    session: Session,
    lead_id: int,
    *,
    owner: str,
    next_attempt_at: datetime,
    error: str | None,
    count_attempt: bool,
) -> bool:
    """Give a leased lead back to wait for ``next_attempt_at`` (retry or throttle)."""
    values: dict[str, Any] = {
        "next_attempt_at": next_attempt_at,
        "lease_owner": None,
        "lease_until": None,
        "last_error": error,
        "unfinished_runs": 0,
    }
    if count_attempt:
        values["attempts"] = Lead.attempts + 1
    return transition(
        session, lead_id, from_states=[LeadState.delivering], to=LeadState.normalised, owner=owner, **values
    )


def open_dead_letter(
    session: Session,
    lead_id: int,
    *,
    reason: DeadReason,
    message: str,
    detail: dict[str, Any] | None = None,
) -> DeadLetter:
    letter = DeadLetter(lead_id=lead_id, reason=reason, message=message, detail=detail or {})
    session.add(letter)
    session.flush()
    return letter


def kill(
    session: Session,
    lead_id: int,
    *,
    from_states: Iterable[LeadState],
    reason: DeadReason,
    message: str,
    detail: dict[str, Any] | None = None,
    owner: str | None = None,
) -> DeadLetter | None:
    """Make a lead a dead letter (guarded); None if it was no longer in ``from_states``."""
    moved = transition(
        session,
        lead_id,
        from_states=from_states,
        to=LeadState.dead,
        owner=owner,
        lease_owner=None,
        lease_until=None,
        last_error=message,
        unfinished_runs=0,
    )
    if not moved:
        return None
    return open_dead_letter(session, lead_id, reason=reason, message=message, detail=detail)
