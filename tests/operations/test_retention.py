"""The retention policy on the real Postgres: the person goes, the ledger's ids, states and times stay."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from leadrelay.db import transaction, utcnow
from leadrelay.models import AuditEntry, CoworkerCache, Lead
from leadrelay.personal_data import KEPT_LEAD_PARTS
from leadrelay.runtime import Runtime
from leadrelay.worker import tasks
from leadrelay.worker.celery_app import RETENTION_TASK
from leadrelay.worker.retention import RetentionRefused, purge_expired
from leadrelay.worker.scheduling.jobs import DailyAt
from leadrelay.worker.scheduling.periodic import RETENTION_JOB, leadrelay_jobs
from tests.dead_letters.test_replay import replay, settle
from tests.helpers import attempts, canonical, dead_letters, ingest, lead
from tests.operations.support import MESSAGE, PERSON, age, ledger_text, traces_of_the_person
from tests.test_cli import cli

# what a purge must not change
KEPT = (
    "id",
    "channel",
    "source",
    "intake_key",
    "received_at",
    "state",
    "state_changed_at",
    "external_id",
    "fingerprint",
    "location",
    "attempts",
    "account",
    "coworker_id",
    "opportunity_id",
    "opportunity_name",
    "delivered_at",
)
NO_EMAIL = {key: value for key, value in PERSON.items() if key != "email"}


def kept(rt: Runtime, lead_id: int) -> dict[str, object]:
    row = lead(rt, lead_id)
    return {column: getattr(row, column) for column in KEPT}


def send(rt: Runtime, ref: str, contact: dict[str, str] = PERSON) -> int:
    return ingest(rt, canonical(external_id=ref, contact=contact, message=MESSAGE))


def age_customer_cache(rt: Runtime, days: float) -> None:
    with transaction(rt.sessions) as session:
        session.execute(update(CoworkerCache).values(updated_at=utcnow() - timedelta(days=days)))


def old_delivered_lead(rt: Runtime, ref: str = "old-1") -> int:
    lead_id = send(rt, ref)
    assert settle(rt, lead_id) == "delivered"
    age(rt, lead_id, days=400)
    age_customer_cache(rt, 400)
    return lead_id


def test_a_finished_lead_past_the_period_keeps_ids_states_and_times_but_not_the_person(runtime) -> None:
    delivered = old_delivered_lead(runtime)
    refused = send(runtime, "old-2", NO_EMAIL)  # Nexudus requires an e-mail: a validation dead letter
    assert settle(runtime, refused) == "dead"
    age(runtime, refused, days=400)
    before = {lead_id: kept(runtime, lead_id) for lead_id in (delivered, refused)}
    assert traces_of_the_person(runtime)  # the details are there to be purged

    report = purge_expired(runtime, days=365)

    assert (report.leads, dict(report.by_state)) == (2, {"delivered": 1, "dead": 1})
    assert (report.dead_letters_closed, report.cache_rows) == (1, 1)
    for lead_id in (delivered, refused):
        row = lead(runtime, lead_id)
        assert kept(runtime, lead_id) == before[lead_id]
        assert (row.raw_body, row.identity, row.company_key) == (None, None, None)
        assert row.lead is not None
        assert set(row.lead) <= {*KEPT_LEAD_PARTS, "broker"}  # the broker firm's name, not its staff
        assert set(row.lead.get("broker", {})) <= {"name"}
        assert (row.purged_why, row.purged_at is not None) == ("retention", True)
    assert traces_of_the_person(runtime) == []
    assert {attempt.response for attempt in attempts(runtime, delivered)} == {None}
    [letter] = dead_letters(runtime, refused)
    assert (letter.status, letter.resolved_by) == ("discarded", "system:retention")
    assert "can no longer be replayed" in (letter.resolution or "")
    assert replay(runtime, letter.id).outcome == "refused"
    with runtime.sessions() as session:
        [entry] = session.execute(select(AuditEntry).where(AuditEntry.action == "retention.purge")).scalars()
    assert entry.detail["leads"] == 2


def test_recent_leads_and_leads_still_on_their_way_are_left_alone(runtime) -> None:
    recent = send(runtime, "new-1")
    assert settle(runtime, recent) == "delivered"
    waiting = send(runtime, "waiting-1")  # received long ago, never read: not finished with
    age(runtime, waiting, days=400)
    before = ledger_text(runtime)

    report = purge_expired(runtime, days=365)

    assert report.leads == 0
    assert ledger_text(runtime) == before
    for lead_id in (recent, waiting):
        assert lead(runtime, lead_id).raw_body is not None
        assert lead(runtime, lead_id).purged_at is None


def test_a_dry_run_counts_what_is_due_and_changes_nothing(runtime) -> None:
    old_delivered_lead(runtime)
    before = ledger_text(runtime)

    report = purge_expired(runtime, days=365, dry_run=True)

    assert (report.leads, dict(report.by_state), report.cache_rows) == (1, {"delivered": 1}, 1)
    assert ledger_text(runtime) == before


def test_a_second_run_finds_nothing_left_to_do(runtime) -> None:
    old_delivered_lead(runtime)
    assert purge_expired(runtime, days=365).leads == 1
    after_first = ledger_text(runtime)

    again = purge_expired(runtime, days=365)

    assert (again.leads, again.dead_letters_closed, again.cache_rows) == (0, 0, 0)
    assert ledger_text(runtime) == after_first


def test_a_purged_lead_still_recognises_its_own_repeat(runtime, sandbox) -> None:
    old_delivered_lead(runtime, "repeat-1")
    purge_expired(runtime, days=365)

    again = send(runtime, "repeat-1")

    assert settle(runtime, again) == "duplicate"
    assert len(sandbox.opportunities()) == 1


def test_a_period_shorter_than_the_broker_protection_window_is_refused(runtime) -> None:
    old_delivered_lead(runtime)
    with pytest.raises(RetentionRefused, match="90-day broker protection window"):
        purge_expired(runtime, days=30)
    assert traces_of_the_person(runtime)


def test_the_scheduler_runs_the_policy_every_day(runtime, monkeypatch) -> None:
    [job] = [job for job in leadrelay_jobs(runtime) if job.name == RETENTION_JOB]
    assert job.schedule == DailyAt(hour=3, minute=17)
    sent: list[str] = []
    monkeypatch.setattr(tasks.app, "send_task", lambda name, **_: sent.append(name))
    job.run()
    assert sent == [RETENTION_TASK]
    lead_id = old_delivered_lead(runtime)
    age(runtime, lead_id, days=200)  # past the default LEADRELAY_RETENTION_DAYS (180)

    result = tasks.app.tasks[RETENTION_TASK].apply().get()

    assert result == {"leads": 1, "dead_letters_closed": 0}
    assert lead(runtime, lead_id).purged_why == "retention"


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", **extra}


def table_rows(output: str) -> list[tuple[str, ...]]:
    """The body rows of a rich table, cell by cell (markup such as bold is gone from the text)."""
    return [
        tuple(cell.strip() for cell in line.strip("│").split("│"))
        for line in output.splitlines()
        if line.startswith("│")
    ]


def count_purged(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.execute(select(func.count()).where(Lead.purged_at.is_not(None))).scalar_one())


def test_the_retention_command_previews_purges_and_reports(runtime) -> None:
    old_delivered_lead(runtime)

    preview = cli("retention", "--days", "365", "--dry-run", env=cli_env())
    assert preview.returncode == 0, preview.stderr
    assert "would be purged" in preview.stdout
    assert ("delivered", "1") in table_rows(preview.stdout)
    assert "(dry run: nothing changed)" in preview.stdout
    assert count_purged(runtime) == 0

    purged = cli("retention", "--days", "365", env=cli_env())
    assert purged.returncode == 0, purged.stderr
    assert "Nexudus customer cache entries forgotten: 1." in purged.stdout
    assert count_purged(runtime) == 1

    again = cli("retention", "--days", "365", env=cli_env())
    assert again.returncode == 0, again.stderr
    assert ("all", "0") in table_rows(again.stdout)


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (("--days", "30"), {}, "inside the 90-day broker protection window"),
        ((), {"LEADRELAY_RETENTION_DAYS": "0"}, "retention is off"),
    ],
)
def test_the_retention_command_refuses_in_one_line(
    runtime, args: tuple[str, ...], env: dict[str, str], says: str
) -> None:
    old_delivered_lead(runtime)
    result = cli("retention", *args, env=cli_env(**env))
    assert result.returncode == 1
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert count_purged(runtime) == 0
