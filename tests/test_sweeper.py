"""The sweeper brings back what the broker lost: never-enqueued, due, abandoned leads."""

from __future__ import annotations

from datetime import timedelta

from leadrelay.db import utcnow
from leadrelay.models import LeadState
from leadrelay.runtime import Runtime
from leadrelay.worker.sweeper import sweep
from tests.helpers import canonical, ingest, set_lead


def run(rt: Runtime) -> list[int]:
    sent: list[int] = []

    def enqueue(ids: list[int]) -> int:
        sent.extend(ids)
        return len(ids)

    sweep(rt, enqueue=enqueue)
    return sorted(sent)


def test_a_fresh_lead_is_left_to_its_own_message(runtime: Runtime) -> None:
    ingest(runtime, canonical())
    assert run(runtime) == []


def test_a_lead_whose_message_was_lost_is_enqueued_again_once(runtime: Runtime) -> None:
    lead_id = ingest(runtime, canonical())
    set_lead(runtime, lead_id, enqueued_at=utcnow() - timedelta(minutes=5))
    assert run(runtime) == [lead_id]
    assert run(runtime) == []  # marked as enqueued: not again until requeue_after passes


def test_a_lead_due_for_retry_is_enqueued_when_its_time_comes(runtime: Runtime) -> None:
    lead_id = ingest(runtime, canonical())
    now = utcnow()
    set_lead(
        runtime,
        lead_id,
        state=LeadState.normalised,
        enqueued_at=now - timedelta(seconds=2),
        next_attempt_at=now + timedelta(seconds=30),
    )
    assert run(runtime) == []
    set_lead(runtime, lead_id, next_attempt_at=now - timedelta(seconds=1))
    assert run(runtime) == [lead_id]
    assert run(runtime) == []


def test_a_lead_abandoned_by_a_dead_worker_is_enqueued_when_its_lease_expires(runtime: Runtime) -> None:
    lead_id = ingest(runtime, canonical())
    now = utcnow()
    set_lead(
        runtime,
        lead_id,
        state=LeadState.delivering,
        lease_owner="dead-worker",
        enqueued_at=now - timedelta(seconds=3),
        lease_until=now + timedelta(seconds=30),
    )
    assert run(runtime) == []
    set_lead(runtime, lead_id, lease_until=now - timedelta(seconds=1))
    assert run(runtime) == [lead_id]


def test_settled_leads_are_never_swept(runtime: Runtime) -> None:
    old = utcnow() - timedelta(days=1)
    for state in (LeadState.delivered, LeadState.duplicate, LeadState.ignored, LeadState.dead):
        set_lead(runtime, ingest(runtime, canonical()), state=state, enqueued_at=old, next_attempt_at=old)
    assert run(runtime) == []


def test_a_broker_that_refuses_leaves_the_leads_due(runtime: Runtime) -> None:
    lead_id = ingest(runtime, canonical())
    set_lead(runtime, lead_id, enqueued_at=utcnow() - timedelta(minutes=5))
    report = sweep(runtime, enqueue=lambda ids: 0)
    assert (report.found, report.enqueued) == (1, 0)
    assert run(runtime) == [lead_id]
