"""Delivery to Nexudus: real Postgres ledger, real HTTP to the sandbox.

Each test drives the worker's typed functions directly (the Celery task is a thin
wrapper around ``pipeline.process``); end-to-end runs with real worker processes
live in tests/test_end_to_end.py.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from leadrelay.db import transaction, utcnow
from leadrelay.ledger import CreateTag, claim, renew_lease, start_attempt
from leadrelay.models import Lead, LeadState
from leadrelay.runtime import Runtime
from leadrelay.worker.pipeline import process
from tests.conftest import OPEN_BUDGET, make_settings, routing_with
from tests.helpers import at_once, attempts, canonical, dead_letters, ingest, lead, make_due


def outside_protection(rt: Runtime, lead_id: int) -> None:
    """Move a lead's arrival back past the 90-day broker protection window."""
    with transaction(rt.sessions) as session:
        session.execute(
            update(Lead).where(Lead.id == lead_id).values(received_at=utcnow() - timedelta(days=91))
        )


def deliver_now(rt: Runtime, lead_id: int, owner: str = "test-worker") -> str:
    make_due(rt, lead_id)
    return process(rt, lead_id, owner=owner)


def test_a_canonical_lead_becomes_one_coworker_and_one_opportunity(runtime: Runtime, sandbox) -> None:
    lead_id = ingest(runtime, canonical())
    assert process(runtime, lead_id, owner="w") == "delivered"

    [opportunity] = sandbox.opportunities()
    [customer] = [c for c in sandbox.coworkers() if c["Email"] == "mei.chen@example.com"]
    assert opportunity["Name"] == "Broker zap-000193"
    assert opportunity["LeadSource"] == 11
    assert opportunity["AgentId"] == 3004
    assert opportunity["CrmBoardColumnId"] == 2001
    assert opportunity["Status"] == 1
    assert opportunity["CoworkerId"] == customer["Id"]
    assert opportunity["Value"] == 5200 * 12
    # the enquiry's time + the 24 h follow-up of the routing defaults
    assert datetime.fromisoformat(opportunity["DueDate"]) == datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert opportunity["UtmSource"] == "newsletter"
    assert opportunity["UtmCampaign"] == "winter-2026"
    assert opportunity["SystemId"] == "leadrelay:canonical:zap-000193"
    for fact in ("Mei Chen", "Chen Robotics", "Desks: 8–10", "GBP 5,200 per month", "Term: 12 months"):
        assert fact in opportunity["Notes"]
    assert customer["InvoicingBusinessId"] == 1001
    assert customer["Businesses"] == [1001]
    assert customer["MobilePhone"] == "+447700900456"
    assert customer.get("CreateUser") is False

    row = lead(runtime, lead_id)
    assert row.state == LeadState.delivered
    assert row.opportunity_id == opportunity["Id"]
    assert row.coworker_id == customer["Id"]
    assert [a.call for a in attempts(runtime, lead_id)] == [
        "coworker.find",
        "coworker.create",
        "opportunity.create",
    ]


def test_the_same_body_again_creates_nothing_more(runtime: Runtime, sandbox) -> None:
    first = ingest(runtime, canonical())
    again = ingest(runtime, canonical())
    reworded = ingest(runtime, canonical(message="Sent twice by the partner, with a new note."))
    assert [process(runtime, i, owner="w") for i in (first, again, reworded)] == [
        "delivered",
        "duplicate",
        "duplicate",
    ]
    assert len(sandbox.opportunities()) == 1
    assert lead(runtime, again).duplicate_of == first
    assert lead(runtime, reworded).duplicate_of == first


def test_an_existing_customer_is_reused_not_recreated(runtime: Runtime, sandbox) -> None:
    existing = httpx.post(
        f"{sandbox.base_url}/api/spaces/coworkers",
        auth=sandbox.auth,
        json={
            "FullName": "Mei Chen",
            "Email": "mei.chen@example.com",
            "CountryId": 1,
            "SimpleTimeZoneId": 52,
        },
    ).json()["Value"]["Id"]
    lead_id = ingest(runtime, canonical())
    assert process(runtime, lead_id, owner="w") == "delivered"
    assert sandbox.opportunities()[0]["CoworkerId"] == existing
    # a known customer: is there an open opportunity staff made? (none here)
    assert [a.call for a in attempts(runtime, lead_id)] == [
        "coworker.find",
        "opportunity.open",
        "opportunity.create",
    ]


def test_a_known_customer_months_later_uses_the_cached_coworker(runtime: Runtime, sandbox) -> None:
    first = ingest(runtime, canonical())
    process(runtime, first, owner="w")
    outside_protection(runtime, first)
    second = ingest(runtime, canonical(external_id="zap-000200", message="A different enquiry"))
    assert process(runtime, second, owner="w") == "delivered"
    # no customer search; our own earlier opportunity is not "an open one staff made"
    assert [a.call for a in attempts(runtime, second)] == ["opportunity.open", "opportunity.create"]
    assert len(sandbox.opportunities()) == 2


def test_a_nexudus_400_becomes_a_dead_letter_with_the_errors_array(runtime: Runtime, sandbox) -> None:
    phone_only = canonical(
        external_id="zap-000194", contact={"full_name": "Caller", "phone": "+442079460000"}
    )
    lead_id = ingest(runtime, phone_only)
    assert process(runtime, lead_id, owner="w") == "dead"

    [letter] = dead_letters(runtime, lead_id)
    assert letter.reason == "validation"
    assert "Email" in letter.message
    errors = letter.detail["errors"]
    assert {"AttemptedValue", "Message", "PropertyName"} <= set(errors[0])
    assert any(e["PropertyName"] == "Email" for e in errors)
    assert letter.detail["status"] == 400
    assert letter.detail["call"] == "coworker"
    assert sandbox.opportunities() == []
    assert lead(runtime, lead_id).state == LeadState.dead


def test_a_create_whose_answer_is_lost_is_not_duplicated(runtime: Runtime, sandbox) -> None:
    sandbox.add_fault("drop_after_commit", method="POST", path_regex="crmopportunities$")
    lead_id = ingest(runtime, canonical())
    assert process(runtime, lead_id, owner="w1") == "retry"
    assert len(sandbox.opportunities()) == 1  # Nexudus did create it
    assert attempts(runtime, lead_id)[-1].outcome == "unknown"

    assert deliver_now(runtime, lead_id, owner="w2") == "delivered"
    assert len(sandbox.opportunities()) == 1
    assert lead(runtime, lead_id).opportunity_id == sandbox.opportunities()[0]["Id"]
    assert [a.call for a in attempts(runtime, lead_id)][-1] == "opportunity.find"


def test_a_generic_500_after_commit_is_not_duplicated(runtime: Runtime, sandbox) -> None:
    sandbox.add_fault("status_after_commit", method="POST", path_regex="crmopportunities$", status=500)
    lead_id = ingest(runtime, canonical())
    assert process(runtime, lead_id, owner="w1") == "retry"
    assert deliver_now(runtime, lead_id, owner="w2") == "delivered"
    assert len(sandbox.opportunities()) == 1


def test_a_timeout_after_commit_is_not_duplicated(runtime: Runtime, sandbox) -> None:
    sandbox.add_fault("delay_after_commit", method="POST", path_regex="crmopportunities$", seconds=3)
    lead_id = ingest(runtime, canonical())
    assert process(runtime, lead_id, owner="w1") == "retry"  # the client gave up after 2 s
    assert "ReadTimeout" in (lead(runtime, lead_id).last_error or "")
    assert deliver_now(runtime, lead_id, owner="w2") == "delivered"
    assert len(sandbox.opportunities()) == 1


def test_a_5xx_before_anything_happened_is_retried_and_delivered_once(runtime: Runtime, sandbox) -> None:
    sandbox.add_fault("status", method="POST", path_regex="crmopportunities$", status=503)
    lead_id = ingest(runtime, canonical())
    assert process(runtime, lead_id, owner="w1") == "retry"
    assert lead(runtime, lead_id).attempts == 1
    assert sandbox.opportunities() == []
    assert deliver_now(runtime, lead_id, owner="w2") == "delivered"
    assert len(sandbox.opportunities()) == 1


def test_throttling_waits_and_is_not_a_failed_attempt(runtime: Runtime, sandbox) -> None:
    sandbox.add_fault("throttle", method="POST", path_regex="crmopportunities$", seconds=2, times=1)
    lead_id = ingest(runtime, canonical())
    before = utcnow()
    assert process(runtime, lead_id, owner="w") == "throttled"
    row = lead(runtime, lead_id)
    assert row.state == LeadState.normalised
    assert row.attempts == 0
    assert row.next_attempt_at is not None
    assert row.next_attempt_at >= before + timedelta(seconds=2)
    assert dead_letters(runtime) == []
    # Retry-After holds the whole account, not just this lead
    assert deliver_now(runtime, lead_id) == "throttled"
    time.sleep(2.1)
    assert deliver_now(runtime, lead_id) == "delivered"
    assert lead(runtime, lead_id).attempts == 0


def test_retries_run_out_into_an_exhausted_dead_letter(runtime: Runtime, sandbox) -> None:
    sandbox.add_fault("status", method="POST", path_regex="crmopportunities$", status=502, times=None)
    lead_id = ingest(runtime, canonical())
    outcomes = [process(runtime, lead_id, owner="w")]
    while outcomes[-1] == "retry":
        outcomes.append(deliver_now(runtime, lead_id))
    # schedule 0,1,1,1 (tests/conftest.py): the first try and three retries
    assert outcomes == ["retry", "retry", "retry", "dead"]
    [letter] = dead_letters(runtime, lead_id)
    assert letter.reason == "exhausted"
    assert "gave up after 4 attempts" in letter.message
    assert len([a for a in attempts(runtime, lead_id) if a.call == "opportunity.create"]) == 4
    assert sandbox.opportunities() == []


def test_a_deleted_coworker_is_found_or_created_again(runtime: Runtime, sandbox) -> None:
    first = ingest(runtime, canonical())
    process(runtime, first, owner="w")
    outside_protection(runtime, first)
    old_coworker = sandbox.opportunities()[0]["CoworkerId"]
    assert sandbox.delete_coworker(old_coworker)

    second = ingest(runtime, canonical(external_id="zap-000300", message="Another enquiry"))
    assert process(runtime, second, owner="w") == "delivered"
    newest = max(sandbox.opportunities(), key=lambda o: o["Id"])
    assert newest["CoworkerId"] != old_coworker
    calls = [(a.call, a.status_code) for a in attempts(runtime, second)]
    assert calls == [
        ("opportunity.open", 200),
        ("opportunity.create", 401),
        ("opportunity.create", 401),  # the same request with a fresh token: every request is on record
        ("coworker.find", 200),
        ("coworker.create", 200),
        ("opportunity.create", 200),
    ]


def test_a_revoked_token_is_replaced_once_without_losing_the_lead(runtime: Runtime, sandbox) -> None:
    process(runtime, ingest(runtime, canonical()), owner="w")
    sandbox.state.revoke_tokens()
    other = {"full_name": "Ruth Ellis", "email": "ruth@ellis.example"}
    second = ingest(runtime, canonical(external_id="zap-000301", contact=other))
    assert process(runtime, second, owner="w") == "delivered"
    assert len(sandbox.opportunities()) == 2


def test_refused_credentials_pause_the_lead_then_dead_letter_it_as_auth(clean_db, routing, sandbox) -> None:
    settings = make_settings(
        database_url=clean_db,
        nexudus_base_url=sandbox.base_url,
        nexudus_username="sandbox@leadrelay.local",
        nexudus_password="wrong",
    )
    rt = Runtime.load(settings, routing)
    try:
        lead_id = ingest(rt, canonical())
        outcomes = [process(rt, lead_id, owner="w")]
        while outcomes[-1] == "retry":
            outcomes.append(deliver_now(rt, lead_id))
        assert outcomes[-1] == "dead"
        [letter] = dead_letters(rt, lead_id)
        assert letter.reason == "auth"
        assert "invalid_grant" in letter.message or "refused the login" in letter.message
    finally:
        rt.close()


def test_an_unroutable_listing_is_a_routing_dead_letter(clean_db, sandbox) -> None:
    no_default = routing_with(defaults={"location": None}, accounts=OPEN_BUDGET)
    settings = make_settings(
        database_url=clean_db,
        nexudus_base_url=sandbox.base_url,
        nexudus_username="sandbox@leadrelay.local",
        nexudus_password="sandbox",
    )
    rt = Runtime.load(settings, no_default)
    try:
        lead_id = ingest(rt, canonical(listing={"id": "somewhere-else"}))
        assert process(rt, lead_id, owner="w") == "dead"
        [letter] = dead_letters(rt, lead_id)
        assert letter.reason == "routing"
        assert "'somewhere-else'" in letter.message
        assert sandbox.opportunities() == []
    finally:
        rt.close()


def test_an_unreadable_payload_is_a_parse_error_with_the_raw_item_kept(runtime: Runtime, sandbox) -> None:
    body = canonical(contact={"full_name": "Nobody"})  # neither e-mail nor phone
    lead_id = ingest(runtime, body)
    assert process(runtime, lead_id, owner="w") == "dead"
    [letter] = dead_letters(runtime, lead_id)
    assert letter.reason == "parse_error"
    assert "neither an e-mail address nor a usable phone number" in letter.message
    assert lead(runtime, lead_id).raw_body is not None
    assert sandbox.requests() == []  # nothing reached Nexudus


def test_workers_racing_on_one_lead_deliver_it_once(runtime: Runtime, sandbox) -> None:
    sandbox.add_fault("delay", method="POST", path_regex="crmopportunities$", seconds=0.5)
    lead_id = ingest(runtime, canonical())
    outcomes = at_once(lambda n=n: process(runtime, lead_id, owner=f"w{n}") for n in range(6))
    assert sorted(outcomes) == ["delivered"] + ["skipped"] * 5
    assert len(sandbox.opportunities()) == 1


def test_concurrent_copies_of_one_lead_dedupe_to_a_single_primary(runtime: Runtime, sandbox) -> None:
    ids = [ingest(runtime, canonical()) for _ in range(10)]
    results = at_once(lambda i=i: process(runtime, i, owner=f"w{i}") for i in ids)
    outcomes = dict(zip(ids, results, strict=True))
    assert sorted(outcomes.values()) == ["delivered"] + ["duplicate"] * 9
    assert len(sandbox.opportunities()) == 1
    primary = next(i for i, outcome in outcomes.items() if outcome == "delivered")
    assert {lead(runtime, i).duplicate_of for i in ids if i != primary} == {primary}


def test_a_dead_workers_lead_is_finished_by_another_without_a_second_create(
    runtime: Runtime, sandbox
) -> None:
    """The worker died after Nexudus committed the create and before the ledger heard of it."""
    lead_id = ingest(runtime, canonical())
    # run stage 1, then play the dying worker: lease, mark the create as the guard does, send, vanish
    sandbox.add_fault("drop_after_commit", method="POST", path_regex="crmopportunities$")
    process(runtime, lead_id, owner="dying")
    sent_as = lead(runtime, lead_id)
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Lead).where(Lead.id == lead_id).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        claimed = claim(session, lead_id, owner="dying-again", lease_seconds=60)
        assert claimed is not None and claimed.unfinished_runs == 1
        tag = CreateTag(sent_as.opportunity_name or "", sent_as.system_id or "")
        assert renew_lease(session, lead_id, owner="dying-again", lease_seconds=60, creating=tag)
        start_attempt(session, lead_id, "opportunity.create")  # in flight forever: outcome NULL
        session.execute(
            update(Lead).where(Lead.id == lead_id).values(lease_until=utcnow() - timedelta(seconds=1))
        )
    # the create may still land: the rescuer waits for that before it looks, then finds it
    assert process(runtime, lead_id, owner="rescuer") == "waiting"
    assert deliver_now(runtime, lead_id, owner="rescuer") == "delivered"
    assert len(sandbox.opportunities()) == 1
