"""The account's room lock: claims take turns at it, and the budget never waits for it (Postgres).

A claim counts the account's deliveries in flight under that lock; every Nexudus
request's budget reservation updates the account's budget row. The room lock was
that row until the twenty-ninth pass (bench/PROFILE.md): a claim held it through
its round trips, and the other workers' reservations queued behind it.
"""

from __future__ import annotations

import threading

from leadrelay.db import transaction
from leadrelay.driver import as_unit
from leadrelay.models import LeadState
from leadrelay.nexudus.budget import ensure_account, ledger_budget
from leadrelay.routing import NexudusLimits
from leadrelay.runtime import Runtime
from leadrelay.worker.dispatch import Claim, claim, holding_room
from tests.conftest import UNTHROTTLED, routing_with
from tests.helpers import normalised_lead, set_lead

ONE_AT_A_TIME = routing_with(accounts={"main": {"limits": {**UNTHROTTLED, "concurrent_deliveries": 1}}})
CLAIMS = 6
ROUNDS = 12


def _claimed_at_once(runtime: Runtime, leads: list[int]) -> dict[int, Claim]:
    """Each lead claimed by a thread of its own, all let go together."""
    start = threading.Barrier(len(leads))
    got: dict[int, Claim] = {}

    def run(lead_id: int) -> None:
        start.wait()
        with transaction(runtime.sessions) as session:
            found = claim(session, lead_id, owner=f"w{lead_id}", lease_seconds=60, routing=ONE_AT_A_TIME)
        got[lead_id] = found.status

    threads = [threading.Thread(target=run, args=(lead_id,)) for lead_id in leads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return got


def test_claims_at_once_take_no_more_than_the_accounts_room(runtime: Runtime) -> None:
    # without the lock, a round lets two in about one time in three: twelve miss it one time in a hundred
    for round_ in range(ROUNDS):
        leads = [normalised_lead(runtime, f"room-{round_}-{n}") for n in range(CLAIMS)]
        got = _claimed_at_once(runtime, leads)
        assert sorted(got.values()) == sorted([Claim.claimed] + [Claim.busy] * (CLAIMS - 1)), round_
        for lead_id, status in got.items():  # the delivery ends: the room is free for the next round
            if status is Claim.claimed:
                set_lead(runtime, lead_id, state=LeadState.delivered, lease_owner=None, lease_until=None)


def test_a_budget_reservation_does_not_wait_for_a_held_room(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        ensure_account(session, "main")
    budget = ledger_budget(runtime.sessions, "main", NexudusLimits(**UNTHROTTLED))
    reserved = threading.Event()

    def reserve() -> None:
        budget.reserve(write=True, max_wait=1.0)
        reserved.set()

    with transaction(runtime.sessions) as holder:  # a claim of the account, between its statements
        as_unit(holder).execute_together(holding_room(True, "main"))
        thread = threading.Thread(target=reserve)
        thread.start()
        assert reserved.wait(timeout=10), "the reservation waited for the account's room lock"
    thread.join(timeout=10)
