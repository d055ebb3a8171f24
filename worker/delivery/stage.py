"""Stage 2's entry: claim a due lead, read it once, run its delivery, write what is left."""

from __future__ import annotations

import structlog
from pydantic import ValidationError

from leadrelay.canonical import first_error
from leadrelay.driver import unit
from leadrelay.ledger.introduced import Person
from leadrelay.runtime import Runtime
from leadrelay.worker.delivery import followups
from leadrelay.worker.delivery.attempts import Hold, LostLease
from leadrelay.worker.delivery.enrich import Twin
from leadrelay.worker.delivery.flow import Delivery, ReadsBroke
from leadrelay.worker.delivery.outcome import Outcome
from leadrelay.worker.delivery.policy import give_up
from leadrelay.worker.delivery.snapshot import Snapshot, landing_wait
from leadrelay.worker.dispatch import Claim, claim

log = structlog.get_logger(__name__)


def deliver(
    rt: Runtime, lead_id: int, *, owner: str, account: str | None = None, person: Person | None = None
) -> Outcome:
    """Deliver one lead if it is due; returns what happened (for logs and tests).

    ``account``, ``person``: the lead's, when the caller has just read and routed it
    (the claim then decides its first introduction: :func:`leadrelay.ledger.claim`).
    """
    try:
        return _deliver(rt, lead_id, owner=owner, account=account, person=person, reads_apart=False)
    except ReadsBroke:  # the claim went with them, not counted: claim again, the reads apart
        return _deliver(rt, lead_id, owner=owner, account=account, person=person, reads_apart=True)


def _deliver(
    rt: Runtime, lead_id: int, *, owner: str, account: str | None, person: Person | None, reads_apart: bool
) -> Outcome:
    settings = rt.settings
    # the claim's commit does not wait for the disk (nor hold the account's room while it would):
    # the claim itself says so, with no SET LOCAL round trip (ledger.claim)
    with unit(rt.sessions) as work:
        claimed = claim(
            work,
            lead_id,
            owner=owner,
            lease_seconds=settings.lease_seconds,
            routing=rt.routing,
            account=account,
            person=person,
        )
        if claimed.status is Claim.busy:
            return Outcome.busy
        row = claimed.row
        if claimed.status is not Claim.claimed or row is None:
            return Outcome.skipped
        if row.unfinished_runs > settings.max_unfinished_runs:
            runs = row.unfinished_runs - 1
            why = f"delivery started {runs} times without finishing" + (
                f" (last error: {row.last_error})" if row.last_error else ""
            )
            return give_up(
                work.orm(), row, owner=owner, message=why, detail={"runs": runs, "error": row.last_error}
            )
        ready: followups.Ready | None = None
        if row.follow_up is not None:  # a follow-up of an enquiry: merged into its opportunity
            prepared = followups.prepare(rt, work.orm(), row, owner=owner)
            if isinstance(prepared, Outcome):
                return prepared
            ready = prepared
        twin_of = (
            row.duplicate_of if ready is None else None
        )  # a twin with fields to merge in (delivery/enrich.py)
        try:
            snapshot = (
                ready.snapshot if ready else Snapshot.of(row, landing_wait=landing_wait(work, row, settings))
            )
        except ValidationError as err:  # stored by an older version whose rules were looser
            why = f"the lead on record no longer reads as a canonical lead: {first_error(err)}"
            return give_up(work.orm(), row, owner=owner, message=why, detail={"error": "ValidationError"})
        hold = Hold(rt, snapshot, owner)
        delivery = Delivery(hold)
        if ready is None and twin_of is None:  # its reads before any call, with the claim
            delivery.prepare(None if reads_apart else work)
    try:
        if ready:
            return followups.merge(hold, ready)
        if twin_of is not None:
            return Twin(hold, twin_of).run()
        return delivery.run()
    except LostLease:
        log.warning("lease_lost", lead_id=lead_id)
        return Outcome.lost_lease
    finally:
        hold.flush()
