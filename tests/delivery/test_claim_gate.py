"""An account delivers at most ``concurrent_deliveries`` leads at once: the claim counts its room.

The count is part of the claim's own UPDATE (one round trip, under the account's
lock). When that UPDATE takes nothing, a lead that met every other condition was
refused for want of room: it goes back to waiting (the next dispatch hands it
out); one that is not due is left alone. On Postgres and on SQLite (the demo).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from leadrelay.db import transaction, utcnow
from leadrelay.models import LeadState
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.worker.dispatch import Claim, claim
from tests.conftest import UNTHROTTLED, fresh_ledger, routing_with, sandbox_settings
from tests.helpers import claim_status, lead, normalised_lead, set_lead

ONE_AT_A_TIME = routing_with(accounts={"main": {"limits": {**UNTHROTTLED, "concurrent_deliveries": 1}}})


@pytest.fixture(params=["postgres", "sqlite"])
def runtime(
    request: pytest.FixtureRequest, tmp_path: Path, routing: Routing, sandbox: object
) -> Iterator[Runtime]:
    rt = Runtime.load(sandbox_settings(fresh_ledger(request, tmp_path, request.param), sandbox), routing)
    yield rt
    rt.close()


def _normalised(rt: Runtime, n: int) -> int:
    return normalised_lead(rt, f"gate-{n}")


def _claim(rt: Runtime, lead_id: int, owner: str, routing: Routing, *, hinted: bool) -> Claim:
    return claim_status(rt, lead_id, owner, routing=routing, hinted=hinted)


def test_a_full_account_sends_the_lead_back_to_waiting_until_a_delivery_ends(runtime: Runtime) -> None:
    first, second = _normalised(runtime, 1), _normalised(runtime, 2)
    assert _claim(runtime, first, "A", ONE_AT_A_TIME, hinted=True) is Claim.claimed

    for hinted in (True, False):  # the account named by normalise, or read by the claim
        set_lead(runtime, second, enqueued_at=utcnow())
        assert _claim(runtime, second, "B", ONE_AT_A_TIME, hinted=hinted) is Claim.busy
        row = lead(runtime, second)
        assert (row.state, row.lease_owner, row.enqueued_at) == (LeadState.normalised, None, None)

    # room for two: the same lead is claimed beside the first
    two = routing_with(accounts={"main": {"limits": {**UNTHROTTLED, "concurrent_deliveries": 2}}})
    assert _claim(runtime, second, "B", two, hinted=True) is Claim.claimed
    assert lead(runtime, second).lease_owner == "B"


def test_a_lease_that_ran_out_frees_its_room(runtime: Runtime) -> None:
    first, second = _normalised(runtime, 1), _normalised(runtime, 2)
    assert _claim(runtime, first, "A", ONE_AT_A_TIME, hinted=True) is Claim.claimed
    set_lead(runtime, first, lease_until=utcnow() - timedelta(seconds=1))  # A died
    assert _claim(runtime, second, "B", ONE_AT_A_TIME, hinted=False) is Claim.claimed


def test_a_lead_not_due_is_left_alone_when_the_account_has_room(runtime: Runtime) -> None:
    later = _normalised(runtime, 1)
    handed_at = utcnow()
    set_lead(runtime, later, next_attempt_at=utcnow() + timedelta(minutes=5), enqueued_at=handed_at)
    assert _claim(runtime, later, "A", ONE_AT_A_TIME, hinted=True) is Claim.not_due
    row = lead(runtime, later)
    assert (row.state, row.lease_owner, row.enqueued_at) == (LeadState.normalised, None, handed_at)


def test_a_lead_routed_elsewhere_since_it_was_read_is_not_claimed_under_the_old_account(
    runtime: Runtime,
) -> None:
    moved = _normalised(runtime, 1)
    set_lead(runtime, moved, account="elsewhere")
    with transaction(runtime.sessions) as session:
        result = claim(session, moved, owner="A", lease_seconds=60, routing=ONE_AT_A_TIME, account="main")
    assert result.status is Claim.not_due
    assert (lead(runtime, moved).state, lead(runtime, moved).lease_owner) == (LeadState.normalised, None)
