"""One lead through the stages: normalise (and dedupe), then deliver."""

from __future__ import annotations

from leadrelay.db import transaction
from leadrelay.models import LeadState
from leadrelay.runtime import Runtime
from worker.delivery import deliver
from worker.normalise import normalise


def process(rt: Runtime, lead_id: int, *, owner: str) -> str:
    """Move a lead as far as it can go now; safe to call any number of times."""
    with transaction(rt.sessions) as session:
        state = normalise(session, lead_id, routing=rt.routing).state
    if state in (LeadState.normalised, LeadState.delivering):
        return deliver(rt, lead_id, owner=owner)
    return state.value
