"""One lead through the stages: normalise (and dedupe), then deliver.

Every lead settles. A stage run leases the lead and is counted in the ledger
before it does any work (``leads.unfinished_runs``; a second copy of the same
message finds the lease and leaves the lead alone, so copies are not counted),
and the count is cleared by the state change that ends the run normally; a run
that raises, or whose process is killed or timed out, leaves it counted. Past
``max_unfinished_runs`` the lead becomes a dead letter — ``parse_error`` if it
never got read, ``internal`` if its delivery never finished — instead of being
picked up by the sweeper for ever. The error's class (never its text, which may
quote the lead) is kept for the dead letter.
"""

from __future__ import annotations

import structlog
from sqlalchemy import bindparam, case, update
from sqlalchemy.exc import DBAPIError

from leadrelay.db import (
    LEDGER_UNREACHABLE,
    flush_at_commit,
    kept_connections,
    statement_commits,
    transaction,
)
from leadrelay.driver import unit
from leadrelay.ledger import kill, start_reading
from leadrelay.metrics import DEAD, count_intake, count_settled
from leadrelay.models import DeadReason, Lead, LeadState
from leadrelay.runtime import Runtime
from leadrelay.worker.delivery import Outcome, deliver
from leadrelay.worker.dispatch import Enqueue, account_of, dispatch_waiting
from leadrelay.worker.normalise import Normalised, normalise

log = structlog.get_logger(__name__)

# the error's class for the dead letter; a reading lease is given back at once, so that
# the retry can start (and be counted) without waiting for the lease to run out
_READ_BY_US = (Lead.state == LeadState.received) & (Lead.lease_owner == bindparam("_owner"))
_REMEMBER = (
    update(Lead)
    .where(Lead.id == bindparam("_id"))
    .values(
        last_error=bindparam("_error"),
        lease_owner=case((_READ_BY_US, None), else_=Lead.lease_owner),
        lease_until=case((_READ_BY_US, None), else_=Lead.lease_until),
    )
)


def process(
    rt: Runtime, lead_id: int, *, owner: str, enqueue: Enqueue | None = None, freed: set[str] | None = None
) -> str:
    """Move a lead as far as it can go now; safe to call any number of times.

    With ``enqueue``, a finished delivery hands the account's next waiting lead to
    the workers at once, instead of leaving it to the sweeper's next pass. With
    ``freed`` too, it only adds the account to it, for the caller to dispatch once
    for all its leads (:func:`dispatch_freed`); a claim refused for want of room
    still asks at once.
    """
    with kept_connections(rt.sessions):  # a run's dozen units of work on two connections
        try:
            return _process(rt, lead_id, owner=owner, enqueue=enqueue, freed=freed)
        except Exception as exc:
            _remember(rt, lead_id, exc, owner=owner)
            raise


def read(rt: Runtime, lead_id: int, *, owner: str) -> Normalised:
    """Stage 1 alone: lease and count the reading, normalise (sort a stored mail first), count it."""
    if _start_reading(rt, lead_id, owner=owner):
        return Normalised(state=LeadState.dead)
    # not flushed: the attempt statement before a write to Nexudus is, and this reading with it;
    # lost in a crash of Postgres, it is read again (docs/guarantees.md). A mail's leads recorded
    # here are published right after the commit: then it waits for the disk
    with transaction(rt.sessions) as session:
        result = normalise(session, lead_id, routing=rt.routing, reader=owner, flushed=False)
        if result.parts:
            flush_at_commit(session)
    if result.sorted_mail and result.channel is not None:  # a mail the inbox poll stored raw
        count_intake(result.channel, "email", duplicate=False)
    if result.channel is not None:
        count_settled(result.channel, result.state, result.reason)
    return result


def _process(
    rt: Runtime, lead_id: int, *, owner: str, enqueue: Enqueue | None, freed: set[str] | None
) -> str:
    result = read(rt, lead_id, owner=owner)
    if result.parts and enqueue is not None:
        # a mail that held several leads (committed beside it): each its own task, as a webhook's
        # lead is — a table of hundreds would not fit one task's time limit (the sweeper re-sends
        # any the broker did not take)
        enqueue(list(result.parts))
    else:
        for part in result.parts:  # no broker at hand (a test, the CLI): each read and delivered now
            process(rt, part, owner=owner, enqueue=enqueue)
    state = result.state
    if state is LeadState.received:
        return Outcome.skipped  # another worker is reading it
    if state not in (LeadState.normalised, LeadState.delivering):
        return state.value
    # wakes its follow-ups too; the claim decides the first introduction of the person just read
    outcome = deliver(rt, lead_id, owner=owner, account=result.account, person=result.person)
    if enqueue is None or outcome is Outcome.skipped:
        return outcome
    # normalise names the account when it just routed the lead (no read back)
    account = result.account if result.account is not None else account_of(rt, lead_id)
    if account is None:
        return outcome
    refused = outcome is Outcome.busy
    if freed is not None and not refused:
        freed.add(account)
        return outcome
    # a slot of its own freed, or (busy) back to waiting, committed: a slot freed meanwhile takes it
    dispatch_waiting(rt, account, enqueue=enqueue, refused=refused)
    return outcome


def dispatch_freed(rt: Runtime, accounts: set[str], *, enqueue: Enqueue) -> None:
    """The dispatch that deliveries put off (``process(freed=)``): once an account, after the last.

    Asked after every delivery's commit, as :func:`dispatch_waiting` needs. Best effort:
    a failure is logged, and the sweeper's next pass hands out what waits.
    """
    for account in sorted(accounts):
        try:
            dispatch_waiting(rt, account, enqueue=enqueue)
        except Exception as exc:
            log.warning("dispatch_failed", error=type(exc).__name__)
            if isinstance(exc, LEDGER_UNREACHABLE):
                return  # the others would wait out the same outage


def _start_reading(rt: Runtime, lead_id: int, *, owner: str) -> bool:
    """Lease and count a reading of a ``received`` lead; True: it has failed too often (now dead)."""
    settings = rt.settings
    with unit(rt.sessions, autocommit=True) as work:
        started = start_reading(work, lead_id, owner=owner, lease_seconds=settings.lease_seconds)
    if started is None or started.runs <= settings.max_unfinished_runs:
        return False
    runs, error = started.runs - 1, started.last_error
    message = f"reading the lead failed {runs} times" + (f" ({error})" if error else "")
    with transaction(rt.sessions) as session:
        letter = kill(
            session,
            lead_id,
            from_states=[LeadState.received],
            reason=DeadReason.parse_error,
            message=message + "; fix the cause, then replay",
            detail={"runs": runs, "error": error},
            owner=owner,
        )
    if letter is not None:
        DEAD.labels(channel=started.channel, reason=DeadReason.parse_error.value).inc()
        log.error("dead_letter_opened", reason=DeadReason.parse_error.value, runs=runs)
    return True


def _remember(rt: Runtime, lead_id: int, exc: Exception, *, owner: str) -> None:
    """Keep the class of what broke a run, for its dead letter if it never finishes."""
    if isinstance(exc, LEDGER_UNREACHABLE):
        return  # nothing to write, nothing wrong with the lead
    error = f"{type(exc).__name__} in processing"
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        error = f"{type(exc.orig).__name__} from the ledger"
    try:
        with statement_commits(rt.sessions) as session:
            session.execute(_REMEMBER, {"_id": lead_id, "_error": error, "_owner": owner})
    except Exception:  # best effort: the run is already failing with the original error
        log.warning("failure_not_recorded", error=type(exc).__name__)
