"""The opportunity follows the enquiry: each portal's update, viewing and withdrawal (webhook and
e-mail) end as notes on the ONE opportunity its lead made, in order — also when a follow-up
arrives before its lead — with what the account allows applied, exactly once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadrelay.db import transaction, utcnow
from leadrelay.models import DeadReason, LeadState
from leadrelay.nexudus.payloads import note_marker
from leadrelay.routing.follow_ups import FollowUpKind
from leadrelay.runtime import Runtime
from leadrelay.testing.partners import partner_cases, sample
from leadrelay.worker import dead_letters as dlq
from leadrelay.worker import follow_ups as follow_ups_module
from leadrelay.worker.pipeline import process
from tests.conftest import UNTHROTTLED, fresh_ledger, make_settings, routing_with
from tests.helpers import dead_letters, ingest, lead, settle

LEADS = {
    "hubblehq": "webhook-viewing-request.json",
    "liquidspace": "webhook-tour-requested.json",
    "workthere": "webhook-lead.json",
    "kontor": "webhook-lead.json",
}
ORDER = list(FollowUpKind)  # updated, viewing booked, viewing cancelled, withdrawn


def follow_ups(channel: str) -> list[Path]:
    """The portal's follow-up fixtures in the story's order (both doors among them)."""
    cases = [c for c in partner_cases() if c.channel == channel and c.follow_up]
    cases.sort(key=lambda c: ORDER.index(FollowUpKind(c.expected["_follow_up"]["kind"])))
    return [c.path for c in cases]


def put(rt: Runtime, path: Path, channel: str) -> int:
    return ingest(
        rt, path.read_bytes(), channel=channel, source="email" if path.suffix == ".eml" else "webhook"
    )


def the_opportunity(sandbox: Any) -> dict[str, Any]:
    [opportunity] = sandbox.opportunities()
    return dict(opportunity)


def _runtime(url: str, sandbox: Any, **follow_up_options: object) -> Runtime:
    routing = routing_with(accounts={"main": {"limits": UNTHROTTLED, "follow_ups": follow_up_options}})
    settings = make_settings(
        database_url=url,
        nexudus_base_url=sandbox.base_url,
        nexudus_username="sandbox@leadrelay.local",
        nexudus_password="sandbox",
    )
    return Runtime.load(settings, routing)


@pytest.mark.parametrize("update_first", [False, True], ids=["lead-first", "update-first"])
@pytest.mark.parametrize("channel", sorted(LEADS))
def test_a_lead_and_its_follow_ups_are_one_opportunity_whose_notes_tell_the_story(
    runtime: Runtime, sandbox: Any, channel: str, update_first: bool
) -> None:
    story = follow_ups(channel)
    assert {p.suffix for p in story} == {".json", ".eml"}  # both doors
    if update_first:
        update = put(runtime, story[0], channel)
        assert process(runtime, update, owner="w") == "waiting"  # parked: its enquiry is not in Nexudus
        row = lead(runtime, update)
        assert (row.state, row.attempts) == (LeadState.normalised, 0)
        assert "waiting for its enquiry" in (row.last_error or "")
    first = put(runtime, sample(channel, LEADS[channel]), channel)
    assert settle(runtime, first) == "delivered"
    ids = [update] if update_first else []
    for path in story[1:] if update_first else story:
        ids.append(put(runtime, path, channel))
    if update_first:
        # woken by its enquiry's delivery: due now, not at its next recheck
        assert lead(runtime, ids[0]).next_attempt_at <= utcnow()
    assert [settle(runtime, i) for i in ids] == ["merged"] * len(ids)

    opportunity = the_opportunity(sandbox)  # 0 extra opportunities
    notes = opportunity["Notes"]
    positions = [notes.find(note_marker(i)) for i in ids]
    assert all(p > 0 for p in positions) and positions == sorted(positions)  # in order, after the lead's
    assert all(notes.count(note_marker(i)) == 1 for i in ids)
    for kind in ORDER:
        assert f"{kind.heading} via " in notes
    assert "Desks: " in notes.split(note_marker(ids[0]))[1] or channel == "liquidspace"
    assert opportunity["Status"] == 1  # nothing beyond the note by default
    for i in ids:
        row = lead(runtime, i)
        assert (row.state, row.opportunity_id) == (LeadState.merged, opportunity["Id"])


@pytest.mark.parametrize(
    ("database", "notifying", "worker_ahead"),
    [("postgres", True, False), ("postgres", False, True), ("sqlite", False, False)],
    ids=["postgres-notifying", "postgres-worker-clock-ahead", "sqlite"],
)
def test_a_waiting_follow_up_is_woken_by_its_enquirys_settling_on_every_path(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sandbox: Any,
    monkeypatch: pytest.MonkeyPatch,
    database: str,
    notifying: bool,
    worker_ahead: bool,
) -> None:
    """The wake is written with the settling: in its transaction when staff are owed a notification
    (Postgres), as a statement of its own on SQLite; elsewhere carried by the settling statement.

    On Postgres it is due by the ledger's clock, which the dispatch compares with: a
    worker's clock an hour ahead does not leave the follow-up asleep."""
    changes: dict[str, Any] = {"accounts": {"main": {"limits": UNTHROTTLED}}}
    if notifying:
        changes["notifications"] = {
            "enabled": True,
            "opportunity_url": "https://dashboard.nexudus.com/crm/opportunities/{id}",
            "teams": {"foundry": {"email": ["foundry-team@operator.example"]}},
        }
    settings = make_settings(
        database_url=fresh_ledger(request, tmp_path, database),
        nexudus_base_url=sandbox.base_url,
        nexudus_username="sandbox@leadrelay.local",
        nexudus_password="sandbox",
    )
    rt = Runtime.load(settings, routing_with(**changes))
    try:
        channel = "hubblehq"
        update = put(rt, follow_ups(channel)[0], channel)
        assert process(rt, update, owner="w") == "waiting"
        assert lead(rt, update).next_attempt_at > utcnow()  # parked until its recheck
        if worker_ahead:
            monkeypatch.setattr(follow_ups_module, "utcnow", lambda: utcnow() + timedelta(hours=1))
        assert settle(rt, put(rt, sample(channel, LEADS[channel]), channel)) == "delivered"
        assert lead(rt, update).next_attempt_at <= utcnow()  # woken with the settling
    finally:
        rt.close()


def test_a_follow_up_sent_twice_is_merged_once(runtime: Runtime, sandbox: Any) -> None:
    settle(runtime, put(runtime, sample("hubblehq", LEADS["hubblehq"]), "hubblehq"))
    update = follow_ups("hubblehq")[0]
    one, two = put(runtime, update, "hubblehq"), put(runtime, update, "hubblehq")
    assert (settle(runtime, one), settle(runtime, two)) == ("merged", "duplicate")
    assert the_opportunity(sandbox)["Notes"].count("Enquiry updated via HubbleHq") == 1


def test_a_merge_whose_answer_was_lost_adds_the_note_once(runtime: Runtime, sandbox: Any) -> None:
    settle(runtime, put(runtime, sample("kontor", LEADS["kontor"]), "kontor"))
    sandbox.add_fault("drop_after_commit", method="PUT", path_regex="crmopportunities$")
    update = put(runtime, follow_ups("kontor")[0], "kontor")
    assert settle(runtime, update) == "merged"
    assert the_opportunity(sandbox)["Notes"].count(note_marker(update)) == 1


def test_the_account_may_let_updates_change_value_and_due_date_and_withdrawals_close_it(
    clean_db: str, sandbox: Any
) -> None:
    rt = _runtime(clean_db, sandbox, apply_fields=True, close_on_withdrawal=True, loss_reason=7)
    try:
        settle(rt, put(rt, sample("hubblehq", LEADS["hubblehq"]), "hubblehq"))
        before = the_opportunity(sandbox)
        assert before["Value"] == 6500 * 12
        story = follow_ups("hubblehq")
        assert settle(rt, put(rt, story[0], "hubblehq")) == "merged"  # 15 desks, £8,000 a month
        updated = the_opportunity(sandbox)
        assert updated["Value"] == 8000 * 12
        assert updated["DueDate"] != before["DueDate"]
        assert "Budget: GBP 6,500 per month → GBP 8,000 per month" in updated["Notes"]
        assert settle(rt, put(rt, story[-1], "hubblehq")) == "merged"  # closed by the client
        closed = the_opportunity(sandbox)
        assert (closed["Status"], closed["LossReason"]) == (3, 7)
        assert "Closed as Lost (Competition)." in closed["Notes"]
    finally:
        rt.close()


def _close_as_won(sandbox: Any) -> None:
    """Staff win the opportunity in Nexudus."""
    api = httpx.Client(base_url=sandbox.base_url, auth=sandbox.auth)
    record = the_opportunity(sandbox)
    assert api.put("/api/crm/crmopportunities", json={**record, "Status": 2}).status_code == 200


@pytest.mark.parametrize("reopen", [False, True], ids=["kept-closed", "reopened"])
def test_a_won_opportunity_only_gets_the_note_unless_reopening_is_configured(
    clean_db: str, sandbox: Any, reopen: bool
) -> None:
    rt = _runtime(clean_db, sandbox, apply_fields=True, reopen_closed=reopen)
    try:
        settle(rt, put(rt, sample("workthere", LEADS["workthere"]), "workthere"))
        _close_as_won(sandbox)
        value = the_opportunity(sandbox)["Value"]
        update = put(rt, follow_ups("workthere")[0], "workthere")
        assert settle(rt, update) == "merged"
        after = the_opportunity(sandbox)
        assert note_marker(update) in after["Notes"]
        if reopen:
            assert after["Status"] == 1 and after["Value"] != value
            assert "Reopened (was Won)." in after["Notes"]
        else:
            assert (after["Status"], after["Value"]) == (2, value)
            assert "The opportunity is Won: left as it is." in after["Notes"]
    finally:
        rt.close()


def test_a_follow_up_whose_enquiry_never_arrives_ends_a_dead_letter_and_replays_into_it(
    clean_db: str, sandbox: Any
) -> None:
    rt = _runtime(clean_db, sandbox)
    rt = Runtime.load(rt.settings.model_copy(update={"follow_up_wait_seconds": 0.0}), rt.routing)
    try:
        update = put(rt, follow_ups("liquidspace")[0], "liquidspace")
        assert process(rt, update, owner="w") == "dead"
        [letter] = dead_letters(rt)
        assert letter.reason == DeadReason.no_original
        assert "did not reach Nexudus" in letter.message and "771245" in letter.message
        assert sandbox.opportunities() == []
        assert settle(rt, put(rt, sample("liquidspace", LEADS["liquidspace"]), "liquidspace")) == "delivered"
        with transaction(rt.sessions) as session:
            assert dlq.replay(session, letter.id, actor="test", routing=rt.routing).outcome == "queued"
        assert settle(rt, update) == "merged"
        assert note_marker(update) in the_opportunity(sandbox)["Notes"]
    finally:
        rt.close()
