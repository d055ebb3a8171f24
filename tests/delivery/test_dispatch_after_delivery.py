"""After a delivery ends, the account's waiting leads go (``worker.dispatch.dispatch_waiting``).

Nearly always nothing waits, or (after a refusal) there is no room: one statement
asks, without the account's lock or a transaction, after the caller's commit. A
lead refused for want of room while a delivery was in flight, whose refusal that
delivery's question did not see yet, is dispatched by its own worker, whose
question after the refusal's commit sees the freed slot: each side writes, then
reads, so one of the two sees the other.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from leadrelay.db import transaction, utcnow
from leadrelay.models import LeadState
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.worker import pipeline
from leadrelay.worker.dispatch import Claim, claim, dispatch_waiting
from tests.conftest import UNTHROTTLED, routing_with
from tests.helpers import claim_status, lead, normalised_lead, set_lead


@pytest.fixture(scope="module")
def routing() -> Routing:
    """One delivery at a time for the account."""
    return routing_with(accounts={"main": {"limits": {**UNTHROTTLED, "concurrent_deliveries": 1}}})


def _normalised(rt: Runtime, n: int) -> int:
    return normalised_lead(rt, f"after-{n}")


def _claimed(rt: Runtime, lead_id: int, owner: str) -> Claim:
    return claim_status(rt, lead_id, owner)


def _delivered(rt: Runtime, lead_id: int) -> None:
    set_lead(rt, lead_id, state=LeadState.delivered, lease_owner=None, lease_until=None)


def _asks_once_and_hands_nothing(rt: Runtime, *, refused: bool = False) -> None:
    """``dispatch_waiting`` runs one statement, takes no lock (nor a transaction) and publishes nothing."""
    seen: list[str] = []
    event.listen(rt.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    event.listen(rt.engine, "commit", lambda *_: seen.append("COMMIT"))
    published, enqueue = _published()
    assert dispatch_waiting(rt, "main", enqueue=enqueue, refused=refused) == 0
    assert len(seen) == 1 and published == []
    assert "FOR UPDATE" not in seen[0] and "pg_advisory" not in seen[0]


def _published() -> tuple[list[int], Any]:
    published: list[int] = []

    def enqueue(ids: list[int]) -> int:
        published.extend(ids)
        return len(ids)

    return published, enqueue


def test_with_nothing_waiting_one_statement_asks_and_takes_no_lock(runtime: Runtime) -> None:
    handed = _normalised(runtime, 1)
    set_lead(runtime, handed, enqueued_at=utcnow())  # on the broker already: not waiting
    _asks_once_and_hands_nothing(runtime)


def test_after_a_refusal_with_still_no_room_no_lock_is_taken(runtime: Runtime) -> None:
    first, second = _normalised(runtime, 1), _normalised(runtime, 2)
    set_lead(runtime, second, enqueued_at=utcnow())
    assert _claimed(runtime, first, "A") is Claim.claimed
    assert _claimed(runtime, second, "B") is Claim.busy  # waits now, and A still delivers
    _asks_once_and_hands_nothing(runtime, refused=True)  # the refused side counts the room


def test_a_delivery_that_finds_a_lead_waiting_still_hands_out_no_more_than_the_room(
    runtime: Runtime,
) -> None:
    """The delivery's question does not count the room (its own slot is free): the dispatch does."""
    first, second = _normalised(runtime, 1), _normalised(runtime, 2)
    set_lead(runtime, second, enqueued_at=utcnow())
    assert _claimed(runtime, first, "A") is Claim.claimed
    assert _claimed(runtime, second, "B") is Claim.busy  # waiting, and A delivering
    published, enqueue = _published()
    assert dispatch_waiting(runtime, "main", enqueue=enqueue) == 0  # asked as a delivery: no room yet
    assert published == [] and lead(runtime, second).enqueued_at is None
    _delivered(runtime, first)
    assert dispatch_waiting(runtime, "main", enqueue=enqueue) == 1
    assert published == [second]


def test_a_lead_waiting_for_room_goes_when_a_delivery_ends(runtime: Runtime) -> None:
    first, second = _normalised(runtime, 1), _normalised(runtime, 2)
    set_lead(runtime, second, enqueued_at=utcnow())  # its message on the broker: not waiting yet
    assert _claimed(runtime, first, "A") is Claim.claimed
    assert _claimed(runtime, second, "B") is Claim.busy  # back to waiting
    published, enqueue = _published()
    _delivered(runtime, first)
    assert dispatch_waiting(runtime, "main", enqueue=enqueue) == 1
    assert published == [second] and lead(runtime, second).enqueued_at is not None


def test_a_refusal_the_delivery_did_not_see_is_dispatched_by_its_own_worker(runtime: Runtime) -> None:
    """The refusal commits after the delivery's check: the refused lead's worker hands it out itself."""
    first, second = _normalised(runtime, 1), _normalised(runtime, 2)
    set_lead(runtime, second, enqueued_at=utcnow())  # its message on the broker: not waiting yet
    assert _claimed(runtime, first, "A") is Claim.claimed
    published, enqueue = _published()
    with transaction(runtime.sessions) as refusing:  # B's claim: A in flight, no room; not committed yet
        found = claim(refusing, second, owner="B", lease_seconds=60, routing=runtime.routing)
        assert found.status is Claim.busy
        _delivered(runtime, first)  # A settles meanwhile, and asks: the refusal is not there to see
        assert dispatch_waiting(runtime, "main", enqueue=enqueue) == 0  # no lock: it does not wait for B
    assert published == [] and lead(runtime, second).state == LeadState.normalised
    # B's worker, after its commit: the refused side's question, its room counted
    assert dispatch_waiting(runtime, "main", enqueue=enqueue, refused=True) == 1
    assert published == [second]


def test_a_busy_lead_and_a_delivered_one_each_ask_after_their_commit(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring in ``pipeline.process``: a refused lead's worker asks too, not only a delivery's."""
    first, second = _normalised(runtime, 1), _normalised(runtime, 2)
    asked: list[str] = []
    real = pipeline.dispatch_waiting

    def spy(rt: Runtime, account: str, *, enqueue: Any, refused: bool) -> int:
        asked.append(f"{account}, refused" if refused else account)
        return real(rt, account, enqueue=enqueue, refused=refused)

    monkeypatch.setattr(pipeline, "dispatch_waiting", spy)
    assert _claimed(runtime, first, "A") is Claim.claimed
    assert pipeline.process(runtime, second, owner="B", enqueue=len) == "busy"
    assert asked == ["main, refused"]
    _delivered(runtime, first)
    assert pipeline.process(runtime, second, owner="B", enqueue=len) == "delivered"
    assert asked == ["main, refused", "main"]
