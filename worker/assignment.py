"""Who a new opportunity is for (its ``ResponsibleId``), decided in Postgres so every worker agrees.

The most specific ``assignment`` rule matching the lead's account, location and
channel names a pool of staff ids and a mode (docs/configuration.md):

* ``fixed``: the one id;
* ``round_robin``: the pool's row in ``assignment_pools`` is bumped by one
  ``INSERT … ON CONFLICT DO UPDATE … RETURNING turns``; the row lock it takes
  lasts until the transaction commits, so concurrent workers get consecutive
  turns, and turn ``n`` is ``staff[(n - 1) % len(staff)]``;
* ``least_open``: under the same row lock, the staff id holding the fewest
  opportunities leadrelay assigned from this pool that are still open — an
  approximation, since the ledger does not see a deal won or lost in Nexudus:
  "open" is a pick younger than the rule's ``open_days`` whose lead is being
  delivered or was delivered as a new opportunity. Ties go round the pool in turn.

The pick is recorded per enquiry (``assignments``, keyed by the create's SystemId,
which a retry, a replay or a partner's resend keeps) in the same transaction, so
a lead picked for once is never picked for again: the rotation moves once per
enquiry. With no rule, the location's ``responsible_id`` (if any) is used as before.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leadrelay.db import insert_for, utcnow
from leadrelay.models import Assignment, AssignmentPool, Lead, LeadState
from leadrelay.nexudus.payloads import Route
from leadrelay.routing import Routing
from leadrelay.routing.staff import AssignmentMode, AssignmentRule, rule_for

OPEN_STATES = (LeadState.normalised, LeadState.delivering, LeadState.delivered)


def responsible_id(
    ledger: Callable[[], AbstractContextManager[Session]],
    routing: Routing,
    route: Route,
    *,
    enquiry: str,
    lead_id: int,
) -> int | None:
    """The ResponsibleId of the enquiry's opportunity: picked once, then always the same.

    ``ledger`` opens the transaction a rule's pick is made in; with no rule for the
    route, the location's id is the answer and no transaction is opened.
    """
    rule = rule_for(routing, account=route.account, location=route.location, channel=route.channel)
    if rule is None:
        return route.location_config.responsible_id
    with ledger() as session:
        return _pick(session, rule, enquiry=enquiry, lead_id=lead_id)


def _pick(session: Session, rule: AssignmentRule, *, enquiry: str, lead_id: int) -> int:
    picked = session.get(Assignment, enquiry)
    if picked is not None:
        return picked.staff_id
    if rule.mode is AssignmentMode.fixed:
        staff = rule.staff[0]
    elif rule.mode is AssignmentMode.least_open:
        staff = _least_open(session, rule, _next_turn(session, rule.pool_name))
    else:
        turn = _next_turn(session, rule.pool_name)
        staff = rule.staff[(turn - 1) % len(rule.staff)]
    session.execute(
        insert_for(session, Assignment)
        .values(enquiry=enquiry, lead_id=lead_id, pool=rule.pool_name, staff_id=staff, assigned_at=utcnow())
        .on_conflict_do_nothing(index_elements=["enquiry"])
    )
    # another run of the same enquiry may have got there first: its pick stands
    return session.execute(select(Assignment.staff_id).where(Assignment.enquiry == enquiry)).scalar_one()


def _next_turn(session: Session, pool: str) -> int:
    """The pool's next turn (1, 2, …); the pool's row stays locked until the transaction ends."""
    stmt = insert_for(session, AssignmentPool).values(pool=pool, turns=1, updated_at=utcnow())
    stmt = stmt.on_conflict_do_update(
        index_elements=["pool"],
        set_={"turns": AssignmentPool.turns + 1, "updated_at": stmt.excluded.updated_at},
    ).returning(AssignmentPool.turns)
    return int(session.execute(stmt).scalar_one())


def _least_open(session: Session, rule: AssignmentRule, turn: int) -> int:
    """The staff id with the fewest open picks in the pool; ties broken in turn order."""
    since = utcnow() - timedelta(days=rule.open_days)
    counts = dict(
        session.execute(
            select(Assignment.staff_id, func.count())
            .join(Lead, Lead.id == Assignment.lead_id)
            .where(
                Assignment.pool == rule.pool_name,
                Assignment.assigned_at >= since,
                Lead.state.in_([s.value for s in OPEN_STATES]),
            )
            .group_by(Assignment.staff_id)
        ).all()
    )
    size = len(rule.staff)
    order = [rule.staff[(turn - 1 + i) % size] for i in range(size)]
    return min(order, key=lambda staff: (counts.get(staff, 0), order.index(staff)))


def assigned_staff(session: Session, enquiry: str | None) -> int | None:
    """Whom the enquiry's opportunity was assigned to, if leadrelay picked someone."""
    if not enquiry:
        return None
    return session.execute(
        select(Assignment.staff_id).where(Assignment.enquiry == enquiry)
    ).scalar_one_or_none()
