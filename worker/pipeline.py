"""One lead through the stages: normalise (and dedupe), then deliver."""

from __future__ import annotations

from leadrelay.db import transaction
from leadrelay.metrics import count_settled
from leadrelay.models import LeadState
from leadrelay.runtime import Runtime
from worker.delivery import deliver
from worker.dispatch import Enqueue, account_of, dispatch
from worker.normalise import normalise


def process(rt: Runtime, lead_id: int, *, owner: str, enqueue: Enqueue | None = None) -> str:
    """Move a lead as far as it can go now; safe to call any number of times.

    With ``enqueue``, a finished delivery hands the account's next waiting lead to
    the workers at once, instead of leaving it to the sweeper's next pass.
    """
    with transaction(rt.sessions) as session:
        result = normalise(session, lead_id, routing=rt.routing)
    if result.channel is not None:
        count_settled(result.channel, result.state)
    state = result.state
    if state not in (LeadState.normalised, LeadState.delivering):
        return state.value
    outcome = deliver(rt, lead_id, owner=owner)
    if enqueue is not None and outcome not in ("busy", "skipped"):
        # normalise names the account when it just routed the lead (no read back)
        account = result.account if result.account is not None else account_of(rt, lead_id)
        if account is not None:
            dispatch(rt, account, enqueue=enqueue)
    return outcome
