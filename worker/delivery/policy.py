"""How a run ends: settled, handed back (retry, throttle, a short wait) or a dead letter.

Each ending is one guarded state change; one that finds the lead no longer ours
raises :class:`LostLease` (the next owner finds what this run made: nothing is
duplicated).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session

from leadrelay import ledger
from leadrelay.db import utcnow
from leadrelay.driver import Unit
from leadrelay.metrics import DEAD, DELIVERED, RETRIES
from leadrelay.models import DeadReason, LeadState
from leadrelay.nexudus.classify import Outcome as Answer
from leadrelay.nexudus.classify import Result
from leadrelay.worker import follow_ups
from leadrelay.worker.delivery.attempts import Hold, LostLease
from leadrelay.worker.delivery.outcome import Outcome
from leadrelay.worker.retry import next_attempt
from leadrelay.worker.speed_to_lead import outbox

log = structlog.get_logger(__name__)
# the settlings that put the lead's enquiry in Nexudus, or a follow-up merged into it
WAKES = frozenset({LeadState.delivered, LeadState.attached, LeadState.merged})


def delivered(hold: Hold, coworker_id: int | None, opportunity_id: int, name: str) -> Outcome:
    return settle(
        hold, LeadState.delivered, coworker_id=coworker_id, opportunity_id=opportunity_id, name=name
    )


def settle(
    hold: Hold, state: LeadState, *, coworker_id: int | None, opportunity_id: int | None, name: str | None
) -> Outcome:
    values: dict[str, Any] = {
        "coworker_id": coworker_id,
        "opportunity_id": opportunity_id,
        "opportunity_name": name,
        "delivered_at": utcnow(),
        "lease_owner": None,
        "lease_until": None,
        "last_error": None,
        "unfinished_runs": 0,
    }
    if state in WAKES:  # its enquiry's follow-ups waiting for it: due now, with the settling itself
        hold.later(follow_ups.wake_write(hold.s.id))
    # what staff are owed (a new opportunity, a later introduction) is recorded with the settling
    # itself (worker/speed_to_lead); a twin's enrichment or a follow-up's merge owes nobody a word
    owes = state in (LeadState.delivered, LeadState.attached) and opportunity_id is not None
    if owes and hold.rt.routing.notifications.enabled:
        with hold.tx() as session:
            moved = _settled(session, hold, state, values)
            if moved and opportunity_id is not None:
                attached = state is LeadState.attached
                outbox.owed(
                    session, hold.rt.routing, hold.s.id, attached=attached, opportunity_id=opportunity_id
                )
    else:  # one statement, carrying the last attempt's outcome
        with hold.statement_unit() as (work, carried):
            moved = _settled(work, hold, state, values, side_writes=carried)
    if not moved:
        # The next owner finds this opportunity by its Name (or its note by the
        # marker): nothing is duplicated.
        raise LostLease()
    kind = {LeadState.delivered: "opportunity", LeadState.duplicate: "enrichment"}.get(state, "note")
    DELIVERED.labels(channel=hold.s.channel, kind=kind).inc()
    log.info("lead_delivered", kind=kind, opportunity_id=opportunity_id)
    return Outcome(state.value)


def _settled(
    session: Session | Unit,
    hold: Hold,
    state: LeadState,
    values: dict[str, Any],
    side_writes: Sequence[ledger.SideWrite] = (),
) -> bool:
    # its commit does not wait for the disk: a settling a crash of Postgres takes back leaves what
    # a worker killed before it leaves (every write it records went out after a flushed attempt
    # statement, and the next run looks before it writes; docs/guarantees.md)
    return ledger.transition(
        session,
        hold.s.id,
        from_states=[LeadState.delivering],
        to=state,
        owner=hold.owner,
        side_writes=side_writes,
        flushed=False,
        **values,
    )


def dead(hold: Hold, reason: DeadReason, message: str, detail: dict[str, Any]) -> Outcome:
    with hold.tx() as session:
        letter = ledger.kill(
            session,
            hold.s.id,
            from_states=[LeadState.delivering],
            reason=reason,
            message=message,
            detail=detail,
            owner=hold.owner,
        )
    if letter is None:
        raise LostLease()
    DEAD.labels(channel=hold.s.channel, reason=reason.value).inc()
    log.warning("dead_letter_opened", reason=reason.value, dead_letter_id=letter.id)
    return Outcome.dead


def give_up(
    session: Session, row: ledger.LeadRecord, *, owner: str, message: str, detail: dict[str, Any]
) -> Outcome:
    """The lead cannot be delivered as it is (a crash every time, a record that no longer reads): stop."""
    letter = ledger.kill(
        session,
        row.id,
        from_states=[LeadState.delivering],
        reason=DeadReason.internal,
        message=f"{message}; fix the cause (or edit the lead), then replay",
        detail=detail,
        owner=owner,
    )
    if letter is None:
        return Outcome.lost_lease
    DEAD.labels(channel=row.channel, reason=DeadReason.internal.value).inc()
    log.error("dead_letter_opened", reason=DeadReason.internal.value)
    return Outcome.dead


def failed(hold: Hold, result: Result, call: str) -> Outcome:
    """A call that did not succeed: wait and try again, count a failure, or give up."""
    detail = {
        "call": call,
        "status": result.status_code,
        "message": result.message,
        "errors": result.errors,
        "response": result.excerpt,
    }
    now = utcnow()
    if result.outcome is Answer.throttle:
        wait = result.retry_after or 1.0
        return _release(
            hold, now + timedelta(seconds=wait), result.message, count=False, then=Outcome.throttled
        )
    if result.outcome is Answer.dead:
        return dead(hold, DeadReason.validation, result.message, detail)
    failures = hold.s.attempts + 1
    settings = hold.rt.settings
    when = next_attempt(
        failures=failures, schedule=settings.retry_schedule, jitter=settings.retry_jitter, now=now
    )
    if when is None:
        reason = DeadReason.auth if result.outcome is Answer.pause else DeadReason.exhausted
        return dead(hold, reason, f"gave up after {failures} attempts: {result.message}", detail)
    outcome = _release(hold, when, result.message, count=True, then=Outcome.retry)
    RETRIES.labels(call=call).inc()
    log.info("delivery_retry", call=call, status=result.status_code, failures=failures)
    return outcome


def wait(hold: Hold, seconds: float, why: str) -> Outcome:
    """Hand the lead back for a moment, without counting a failed attempt."""
    return _release(hold, utcnow() + timedelta(seconds=seconds), why, count=False, then=Outcome.waiting)


def _release(hold: Hold, when: datetime, error: str, *, count: bool, then: Outcome) -> Outcome:
    with hold.tx() as session:
        moved = ledger.release(
            session, hold.s.id, owner=hold.owner, next_attempt_at=when, error=error, count_attempt=count
        )
    if not moved:
        raise LostLease()
    return then
