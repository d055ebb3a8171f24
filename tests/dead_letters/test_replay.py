"""Dead letters end to end against the sandbox: each reason, fixed, replayed — once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from leadrelay.db import transaction
from leadrelay.models import AuditEntry, DeadLetterStatus, Lead, LeadState
from leadrelay.routing import Routing
from leadrelay.runtime import Runtime
from leadrelay.worker import dead_letters as dlq
from leadrelay.worker.dead_letters import ActionRefused
from leadrelay.worker.pipeline import process
from tests.conftest import OPEN_BUDGET, routing_with, sandbox_settings
from tests.helpers import canonical, dead_letters, ingest, lead, make_due

GOOD_ROUTING = routing_with(accounts=OPEN_BUDGET)


def runtime_for(url: str, sandbox, routing: Routing = GOOD_ROUTING, password: str = "sandbox") -> Runtime:
    return Runtime.load(sandbox_settings(url, sandbox, nexudus_password=password), routing)


@pytest.fixture
def runtimes(clean_db: str, sandbox) -> Iterator[list[Runtime]]:
    made: list[Runtime] = []
    yield made
    for rt in made:
        rt.close()


def settle(rt: Runtime, lead_id: int) -> str:
    """Run the pipeline until the lead stops moving (retries made due at once)."""
    outcome = process(rt, lead_id, owner="w")
    while outcome in ("retry", "throttled", "waiting"):
        make_due(rt, lead_id)
        outcome = process(rt, lead_id, owner="w")
    return outcome


def replay(rt: Runtime, letter_id: int, actor: str = "test:admin") -> dlq.Replayed:
    with transaction(rt.sessions) as session:
        return dlq.replay(session, letter_id, actor=actor, routing=rt.routing)


def open_letter(rt: Runtime, lead_id: int) -> int:
    [letter] = [d for d in dead_letters(rt, lead_id) if d.status == DeadLetterStatus.open]
    return letter.id


def test_a_validation_dead_letter_replays_once_after_the_routing_is_fixed(
    clean_db, sandbox, runtimes
) -> None:
    broken = routing_with(
        accounts=OPEN_BUDGET,
        locations={"foundry": {**GOOD_ROUTING.locations["foundry"].model_dump(), "board_column_id": 2999}},
    )
    rt = runtime_for(clean_db, sandbox, broken)
    runtimes.append(rt)
    lead_id = ingest(rt, canonical())
    assert settle(rt, lead_id) == "dead"
    [letter] = dead_letters(rt, lead_id)
    assert letter.reason == "validation"
    assert any(e["PropertyName"] == "CrmBoardColumnId" for e in letter.detail["errors"])

    fixed = runtime_for(clean_db, sandbox)
    runtimes.append(fixed)
    assert replay(fixed, letter.id).outcome == "queued"
    assert settle(fixed, lead_id) == "delivered"
    assert len(sandbox.opportunities()) == 1

    again = replay(fixed, letter.id)
    assert again.outcome == "refused"
    assert "already replayed" in again.message
    assert process(fixed, lead_id, owner="w") == "delivered"  # nothing to do
    assert len(sandbox.opportunities()) == 1


def test_a_routing_dead_letter_replays_after_the_listing_is_mapped(clean_db, sandbox, runtimes) -> None:
    rt = runtime_for(clean_db, sandbox, routing_with(accounts=OPEN_BUDGET, defaults={"location": None}))
    runtimes.append(rt)
    lead_id = ingest(rt, canonical(listing={"id": "new-building"}))
    assert settle(rt, lead_id) == "dead"
    assert dead_letters(rt, lead_id)[0].reason == "routing"

    mapped = {**GOOD_ROUTING.locations["foundry"].model_dump()}
    mapped["listings"] = {**mapped["listings"], "canonical": ["foundry", "new-building"]}
    fixed = runtime_for(clean_db, sandbox, routing_with(accounts=OPEN_BUDGET, locations={"foundry": mapped}))
    runtimes.append(fixed)
    assert replay(fixed, open_letter(fixed, lead_id)).outcome == "queued"
    assert settle(fixed, lead_id) == "delivered"
    assert sandbox.opportunities()[0]["CrmBoardColumnId"] == 2001


def test_an_auth_dead_letter_replays_after_the_password_is_fixed(clean_db, sandbox, runtimes) -> None:
    rt = runtime_for(clean_db, sandbox, password="wrong")
    runtimes.append(rt)
    lead_id = ingest(rt, canonical())
    assert settle(rt, lead_id) == "dead"
    assert dead_letters(rt, lead_id)[0].reason == "auth"

    fixed = runtime_for(clean_db, sandbox)
    runtimes.append(fixed)
    replay(fixed, open_letter(fixed, lead_id))
    assert settle(fixed, lead_id) == "delivered"
    assert len(sandbox.opportunities()) == 1


def test_an_exhausted_lead_whose_creates_went_unseen_stays_one_opportunity(
    clean_db, sandbox, runtimes
) -> None:
    """Every create reached Nexudus but no answer came back: replay finds it by its Name."""
    sandbox.add_fault("drop_after_commit", method="POST", path_regex="crmopportunities$", times=1)
    sandbox.add_fault("status", method="GET", path_regex="crmopportunities$", status=503, times=None)
    rt = runtime_for(clean_db, sandbox)
    runtimes.append(rt)
    lead_id = ingest(rt, canonical())
    assert settle(rt, lead_id) == "dead"
    assert dead_letters(rt, lead_id)[0].reason == "exhausted"
    assert len(sandbox.opportunities()) == 1

    sandbox.clear_faults()
    replay(rt, open_letter(rt, lead_id))
    assert settle(rt, lead_id) == "delivered"
    assert len(sandbox.opportunities()) == 1
    assert lead(rt, lead_id).opportunity_id == sandbox.opportunities()[0]["Id"]


def test_a_parse_error_is_read_again_on_replay_and_can_be_edited(clean_db, sandbox, runtimes) -> None:
    rt = runtime_for(clean_db, sandbox)
    runtimes.append(rt)
    lead_id = ingest(rt, canonical(contact={"full_name": "Mei Chen"}))  # no way to reach her
    assert settle(rt, lead_id) == "dead"
    first = open_letter(rt, lead_id)
    assert dead_letters(rt, lead_id)[0].reason == "parse_error"

    # replaying the same bytes fails the same way, as a new dead letter
    assert replay(rt, first).outcome == "queued"
    assert settle(rt, lead_id) == "dead"
    second = open_letter(rt, lead_id)
    assert second != first

    with (
        transaction(rt.sessions) as session,
        pytest.raises(ActionRefused, match=r"contact\.email: is not an e-mail address"),
    ):
        dlq.edit(
            session,
            second,
            {"contact": {"email": "mei at example"}},
            actor="test:admin",
            routing=rt.routing,
        )
    with transaction(rt.sessions) as session:
        form = dlq.editable_lead(session, second)
        form["contact"] = {"full_name": "Mei Chen", "email": "Mei.Chen@Example.com"}
        form["listing"] = {"id": "foundry"}
        result = dlq.edit(session, second, form, actor="test:admin", routing=rt.routing)
    assert result.outcome == "queued"
    assert settle(rt, lead_id) == "delivered"
    assert sandbox.coworkers()[-1]["Email"] == "mei.chen@example.com"
    assert len(sandbox.opportunities()) == 1


def test_a_400_rejected_lead_is_fixed_by_editing_it(clean_db, sandbox, runtimes) -> None:
    rt = runtime_for(clean_db, sandbox)
    runtimes.append(rt)
    lead_id = ingest(rt, canonical(contact={"full_name": "Caller", "phone": "+442079460000"}))
    assert settle(rt, lead_id) == "dead"
    letter = open_letter(rt, lead_id)
    with transaction(rt.sessions) as session:
        form = dlq.editable_lead(session, letter)
        form["contact"]["email"] = "caller@example.com"
        assert dlq.edit(session, letter, form, actor="test:admin", routing=rt.routing).outcome == "queued"
    assert settle(rt, lead_id) == "delivered"
    [opportunity] = sandbox.opportunities()
    assert opportunity["LeadSource"] == 11


def test_an_edit_that_makes_a_duplicate_delivers_nothing(clean_db, sandbox, runtimes) -> None:
    rt = runtime_for(clean_db, sandbox)
    runtimes.append(rt)
    assert settle(rt, ingest(rt, canonical())) == "delivered"
    broken = ingest(rt, canonical(external_id="zap-000999", contact={"full_name": "Mei Chen"}))
    assert settle(rt, broken) == "dead"
    with transaction(rt.sessions) as session:
        same = canonical()  # the operator types in the lead we already have
        result = dlq.edit(session, open_letter(rt, broken), same, actor="test:admin", routing=rt.routing)
    assert result.outcome == "duplicate"
    assert lead(rt, broken).state == LeadState.duplicate
    assert len(sandbox.opportunities()) == 1


def test_two_admins_replaying_at_once_replay_once(clean_db, sandbox, runtimes) -> None:
    rt = runtime_for(clean_db, sandbox, routing_with(accounts=OPEN_BUDGET, defaults={"location": None}))
    runtimes.append(rt)
    lead_id = ingest(rt, canonical(listing={"id": "nowhere"}))
    settle(rt, lead_id)
    letter = open_letter(rt, lead_id)
    outcomes: list[str] = []

    def click(n: int) -> None:
        try:
            outcomes.append(replay(rt, letter, actor=f"test:admin{n}").outcome)
        except ActionRefused:
            outcomes.append("refused")

    threads = [threading.Thread(target=click, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["queued"] + ["refused"] * 4


def test_discard_needs_a_reason_and_every_action_is_audited(clean_db, sandbox, runtimes) -> None:
    rt = runtime_for(clean_db, sandbox, routing_with(accounts=OPEN_BUDGET, defaults={"location": None}))
    runtimes.append(rt)
    lead_id = ingest(rt, canonical(listing={"id": "nowhere"}))
    settle(rt, lead_id)
    letter = open_letter(rt, lead_id)
    with transaction(rt.sessions) as session, pytest.raises(ActionRefused, match="say why"):
        dlq.discard(session, letter, actor="test:ops", why="  ")
    with transaction(rt.sessions) as session:
        dlq.discard(session, letter, actor="test:ops", why="test enquiry from the portal's QA team")
    assert replay(rt, letter).outcome == "refused"
    with rt.sessions() as session:
        entries = list(session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars())
    assert [(e.actor, e.action, e.target, e.result) for e in entries] == [
        ("test:ops", "dead_letter.discard", f"dead_letter:{letter}", "discarded")
    ]
    assert entries[0].detail["why"] == "test enquiry from the portal's QA team"
    assert lead(rt, lead_id).state == LeadState.dead


def test_a_partners_corrected_resend_supersedes_the_dead_letter(clean_db, sandbox, runtimes) -> None:
    rt = runtime_for(clean_db, sandbox)
    runtimes.append(rt)
    first = ingest(rt, canonical(contact={"full_name": "Caller", "phone": "+442079460000"}))
    assert settle(rt, first) == "dead"
    corrected = ingest(rt, canonical(contact={"full_name": "Caller", "email": "caller@example.com"}))
    assert settle(rt, corrected) == "delivered"
    [letter] = dead_letters(rt, first)
    assert letter.status == DeadLetterStatus.superseded
    assert f"superseded by lead {corrected}" in (letter.resolution or "")
    assert replay(rt, letter.id).outcome == "refused"
    assert len(sandbox.opportunities()) == 1
    with rt.sessions() as session:
        assert session.execute(select(Lead.state).where(Lead.id == first)).scalar_one() == LeadState.dead
