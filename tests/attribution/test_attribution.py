"""One client, many brokers: the first introduction wins, later ones become notes."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update

from leadrelay.db import transaction, utcnow
from leadrelay.models import Lead, LeadState, PossibleDuplicate
from leadrelay.nexudus.payloads import note_marker
from leadrelay.runtime import Runtime
from leadrelay.testing.partners import sample
from leadrelay.worker import dead_letters as dlq
from leadrelay.worker import introductions
from leadrelay.worker.normalise import normalise
from leadrelay.worker.pipeline import process, read
from tests.conftest import OPEN_BUDGET, make_settings, routing_with
from tests.helpers import canonical, dead_letters, ingest, lead, settle
from tests.test_cli import cli

AMARA = "amara.okafor@brightlane.io"


def hubble(**enquiry: object) -> bytes:
    body = json.loads(sample("hubblehq", "webhook-viewing-request.json").read_text())
    body["enquiry"].update(enquiry)
    return json.dumps(body).encode()


def workthere(email: str = AMARA, reference: str = "WT-2026-004417") -> bytes:
    body = json.loads(sample("workthere", "webhook-lead.json").read_text())
    body["contact"].update(email=email, name="Amara Okafor")
    body["company_name"] = "Brightlane Ltd"
    body["lead_reference"] = reference
    return json.dumps(body).encode()


def test_hubble_then_workthere_for_one_client_is_one_opportunity_with_hubbles_agent(
    runtime: Runtime, sandbox
) -> None:
    first = ingest(runtime, hubble(), channel="hubblehq")
    later = ingest(runtime, workthere(), channel="workthere")
    assert settle(runtime, first) == "delivered"
    assert settle(runtime, later) == "attached"

    [opportunity] = sandbox.opportunities()
    assert (opportunity["LeadSource"], opportunity["AgentId"]) == (17, 3001)  # HubbleHq keeps it
    assert "Later introduction via Workthere (ref WT-2026-004417)" in opportunity["Notes"]
    assert note_marker(later) in opportunity["Notes"]
    assert "First introduced by: HubbleHq ref enq_8F2KQ7XW" in opportunity["Notes"]
    assert opportunity["Notes"].startswith("Viewing request via HubbleHq")  # the rest of the record kept
    row = lead(runtime, later)
    assert (row.state, row.first_introduction, row.opportunity_id) == (
        LeadState.attached,
        first,
        opportunity["Id"],
    )
    assert len([c for c in sandbox.coworkers() if c["Email"] == AMARA]) == 1


def test_an_attach_whose_answer_was_lost_adds_the_note_once(runtime: Runtime, sandbox) -> None:
    first = ingest(runtime, hubble(), channel="hubblehq")
    later = ingest(runtime, workthere(), channel="workthere")
    settle(runtime, first)
    sandbox.add_fault("drop_after_commit", method="PUT", path_regex="crmopportunities$")
    assert settle(runtime, later) == "attached"
    [opportunity] = sandbox.opportunities()
    assert opportunity["Notes"].count(note_marker(later)) == 1


def test_ninety_one_days_later_the_same_client_is_a_new_opportunity(runtime: Runtime, sandbox) -> None:
    first = ingest(runtime, hubble(), channel="hubblehq")
    assert settle(runtime, first) == "delivered"
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Lead).where(Lead.id == first).values(received_at=utcnow() - timedelta(days=91))
        )
    later = ingest(runtime, workthere(), channel="workthere")
    assert settle(runtime, later) == "delivered"
    agents = sorted((o["LeadSource"], o["AgentId"]) for o in sandbox.opportunities())
    assert agents == [(17, 3001), (24, 3003)]
    assert len([c for c in sandbox.coworkers() if c["Email"] == AMARA]) == 1  # the same customer


def test_the_protection_window_can_be_shortened_per_channel(clean_db, sandbox) -> None:
    routing = routing_with(
        accounts=OPEN_BUDGET,
        channels={"workthere": {"lead_source": 24, "agent_id": 3003, "protection_days": 0}},
    )
    rt = Runtime.load(_settings(clean_db, sandbox), routing)
    try:
        settle(rt, ingest(rt, hubble(), channel="hubblehq"))
        assert settle(rt, ingest(rt, workthere(), channel="workthere")) == "delivered"
        assert len(sandbox.opportunities()) == 2
    finally:
        rt.close()


def test_a_later_introduction_waits_for_the_first_one_to_reach_nexudus(runtime: Runtime, sandbox) -> None:
    first = ingest(runtime, hubble(), channel="hubblehq")
    later = ingest(runtime, workthere(), channel="workthere")
    with transaction(runtime.sessions) as session:  # the first one is read but not yet delivered
        normalise(session, first, routing=runtime.routing)
    assert process(runtime, later, owner="w") == "waiting"
    row = lead(runtime, later)
    assert (row.state, row.attempts, row.first_introduction) == (LeadState.normalised, 0, first)
    assert "waiting for lead" in (row.last_error or "")
    assert settle(runtime, first) == "delivered"
    assert settle(runtime, later) == "attached"
    assert len(sandbox.opportunities()) == 1


def test_a_dead_first_introduction_hands_over_and_its_replay_becomes_a_note(
    runtime: Runtime, sandbox
) -> None:
    sandbox.add_fault("status", method="POST", path_regex="crmopportunities$", status=400, times=1)
    first = ingest(runtime, hubble(), channel="hubblehq")
    assert settle(runtime, first) == "dead"
    later = ingest(runtime, workthere(), channel="workthere")
    assert settle(runtime, later) == "delivered"  # the first is not in Nexudus: the later one gets it

    with transaction(runtime.sessions) as session:
        dlq.replay(session, dead_letters(runtime, first)[0].id, actor="test", routing=runtime.routing)
    assert settle(runtime, first) == "attached"  # never a second opportunity
    [opportunity] = sandbox.opportunities()
    assert opportunity["AgentId"] == 3003
    assert note_marker(first) in opportunity["Notes"]


def test_a_staff_created_open_opportunity_for_an_existing_customer_is_reused(
    runtime: Runtime, sandbox
) -> None:
    api = httpx.Client(base_url=sandbox.base_url, auth=sandbox.auth)
    customer = api.post(
        "/api/spaces/coworkers",
        json={"FullName": "Amara Okafor", "Email": AMARA, "CountryId": 1, "SimpleTimeZoneId": 52},
    ).json()["Value"]["Id"]
    other_location = api.post(
        "/api/crm/crmopportunities",
        json={"CrmBoardColumnId": 2002, "CoworkerId": customer, "Status": 1, "Position": 1},
    ).json()["Value"]["Id"]
    staff = api.post(
        "/api/crm/crmopportunities",
        json={
            "CrmBoardColumnId": 2101,
            "CoworkerId": customer,
            "Status": 1,
            "Position": 1,
            "Notes": "Walk-in, Tuesday",
        },
    ).json()["Value"]["Id"]
    lead_id = ingest(runtime, hubble(), channel="hubblehq")
    assert settle(runtime, lead_id) == "attached"
    opportunities = {o["Id"]: o for o in sandbox.opportunities()}
    assert set(opportunities) == {other_location, staff}  # nothing new
    assert opportunities[staff]["Notes"].startswith(
        "Walk-in, Tuesday\n\nNew enquiry via HubbleHq (ref enq_8F2KQ7XW)"
    )
    assert lead(runtime, lead_id).opportunity_id == staff


def test_reusing_staff_opportunities_can_be_switched_off(clean_db, sandbox) -> None:
    api = httpx.Client(base_url=sandbox.base_url, auth=sandbox.auth)
    customer = api.post(
        "/api/spaces/coworkers",
        json={"FullName": "Amara Okafor", "Email": AMARA, "CountryId": 1, "SimpleTimeZoneId": 52},
    ).json()["Value"]["Id"]
    api.post(
        "/api/crm/crmopportunities",
        json={"CrmBoardColumnId": 2001, "CoworkerId": customer, "Status": 1, "Position": 1},
    )
    routing = routing_with(accounts=OPEN_BUDGET, defaults={"reuse_open_opportunities": False})
    rt = Runtime.load(_settings(clean_db, sandbox), routing)
    try:
        assert settle(rt, ingest(rt, hubble(), channel="hubblehq")) == "delivered"
        assert len(sandbox.opportunities()) == 2
    finally:
        rt.close()


def test_same_company_and_a_similar_name_is_flagged_never_merged(runtime: Runtime, sandbox) -> None:
    one = ingest(
        runtime,
        canonical(
            external_id="a-1",
            contact={"full_name": "Amara Okafor", "email": "amara@a.io", "company": "Brightlane Ltd"},
        ),
    )
    two = ingest(
        runtime,
        canonical(
            external_id="a-2",
            contact={"full_name": "Amara  OKAFOR", "email": "a.o@b.io", "company": "Brightlane Limited"},
        ),
    )
    three = ingest(
        runtime,
        canonical(
            external_id="a-3",
            contact={"full_name": "Bob Stone", "email": "bob@b.io", "company": "Brightlane Ltd"},
        ),
    )
    assert [settle(runtime, i) for i in (one, two, three)] == ["delivered"] * 3
    with runtime.sessions() as session:
        flags = [(f.lead_id, f.other_lead_id) for f in session.execute(select(PossibleDuplicate)).scalars()]
    assert flags == [(two, one)]
    assert len(sandbox.opportunities()) == 3


def test_introductions_lists_competing_ones_with_their_deadlines(
    runtime: Runtime, sandbox, tmp_path: Path
) -> None:
    first = ingest(runtime, hubble(), channel="hubblehq")
    later = ingest(runtime, workthere(), channel="workthere")
    settle(runtime, first)
    settle(runtime, later)
    with runtime.sessions() as session:
        [row] = introductions.competing(session, rejection_hours=48)
    assert (row.lead.id, row.first.id) == (later, first)
    assert timedelta(hours=47) < row.time_left <= timedelta(hours=48)

    result = cli("introductions", env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    for text in ("Workthere WT-2026-004417", "HubbleHq enq_8F2KQ7XW", "47h", "Amara Okafor"):
        assert text in result.stdout
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Lead).where(Lead.id == later).values(received_at=utcnow() - timedelta(hours=49))
        )
    assert "No competing introductions within the 48 h" in cli("introductions").stdout
    assert (
        "Workthere WT-2026-004417"
        in cli("introductions", "--all", env={**os.environ, "COLUMNS": "250"}).stdout
    )


def _settings(url: str, sandbox):  # type: ignore[no-untyped-def]
    return make_settings(
        database_url=url,
        nexudus_base_url=sandbox.base_url,
        nexudus_username="sandbox@leadrelay.local",
        nexudus_password="sandbox",
    )


def test_only_the_run_holding_a_lead_for_delivery_writes_its_first_introduction(runtime: Runtime) -> None:
    """A claim that a crash of Postgres took back leaves the lead received, leased to the same owner
    by its reading: the run that carries on writes no mark (docs/guarantees.md)."""
    lead_id = ingest(runtime, hubble(), channel="hubblehq")
    assert read(runtime, lead_id, owner="run-1").state is LeadState.normalised
    for state, marked in ((LeadState.received, None), (LeadState.delivering, lead_id)):
        with transaction(runtime.sessions) as session:
            session.execute(
                update(Lead)
                .where(Lead.id == lead_id)
                .values(state=state, lease_owner="run-1", first_introduction=None)
            )
        with transaction(runtime.sessions) as session:
            introductions.relate(session, session.get(Lead, lead_id), routing=runtime.routing, mark="run-1")
        assert lead(runtime, lead_id).first_introduction == marked
