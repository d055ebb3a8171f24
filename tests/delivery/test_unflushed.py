"""Which of a delivery's commits wait for the disk, and which need not (Postgres).

A statement carrying ``statements.UNFLUSHED_CLAUSE`` commits without waiting for its
WAL flush: the claim, the budget's statements, a lookup's attempt statement and the
settling after the run's last write. What
must stay true (docs/guarantees.md, "Commits that do not wait for the disk"): the
clause changes only the transaction it runs in, never the connection it leaves in the
pool; the reading's count is flushed; and every write to Nexudus is preceded by a
flushed attempt statement, which, the WAL being flushed in order, puts every earlier
unflushed commit of the lead on disk before the write leaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from leadrelay import ledger
from leadrelay.db import statement_commits, transaction
from leadrelay.models import LeadState
from leadrelay.nexudus.budget import ensure_account
from leadrelay.nexudus.tokens import AUTH_ENDPOINT
from leadrelay.runtime import Runtime
from leadrelay.statements import PACE, PENALISE, RESERVE, UNFLUSHED_CLAUSE
from leadrelay.worker.normalise import normalise
from leadrelay.worker.pipeline import process
from tests.conftest import UNTHROTTLED, routing_with, sandbox_settings
from tests.helpers import canonical, ingest

SHOW = text("SHOW synchronous_commit")


def test_the_clause_unflushes_its_own_transaction_and_no_other(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        ensure_account(session, "main")
    with transaction(runtime.sessions) as session:
        assert session.execute(SHOW).scalar_one() == "on"
        assert session.execute(PENALISE, {"account": "main", "seconds": 0.0}).all()  # wrote its row
        assert session.execute(SHOW).scalar_one() == "off"  # this transaction commits unflushed
    with transaction(runtime.sessions) as session:
        assert session.execute(SHOW).scalar_one() == "on"  # the next one on the connection does not
    with statement_commits(runtime.sessions) as session:  # one statement, its own commit
        session.execute(PACE, {"account": "main", "gap": 0.0})
        assert session.execute(SHOW).scalar_one() == "on"  # nothing left behind on the connection


def test_the_readings_count_waits_for_the_disk(runtime: Runtime) -> None:
    """It dead-letters a lead whose reading brings Postgres down: a crash must not take it back."""
    lead_id = ingest(runtime, canonical())
    with transaction(runtime.sessions) as session:
        assert ledger.start_reading(session, lead_id, owner="A", lease_seconds=60) is not None
        assert session.execute(SHOW).scalar_one() == "on"


def test_the_workers_reading_commits_unflushed_by_its_own_statement(runtime: Runtime) -> None:
    """No SET LOCAL round trip: the statement that reads and locks the lead says so (the worker's only)."""
    flushed, unflushed = (ingest(runtime, canonical(external_id=f"read-{n}")) for n in (1, 2))
    with transaction(runtime.sessions) as session:
        assert normalise(session, flushed, routing=runtime.routing).state is LeadState.normalised
        assert session.execute(SHOW).scalar_one() == "on"
    with transaction(runtime.sessions) as session:
        read = normalise(session, unflushed, routing=runtime.routing, flushed=False)
        assert read.state is LeadState.normalised
        assert session.execute(SHOW).scalar_one() == "off"


@pytest.fixture(params=[0, 100], ids=["unpaced", "paced"])
def paced(request: pytest.FixtureRequest, clean_db: str, sandbox: object) -> Iterator[Runtime]:
    """The worker's runtime, its requests paced as Nexudus asks (100 ms apart: PACE runs) or not."""
    limits = {**UNTHROTTLED, "min_interval_ms": request.param}
    routing = routing_with(accounts={"main": {"limits": limits}})
    rt = Runtime.load(sandbox_settings(clean_db, sandbox, budget_wait_seconds=1.0), routing)
    yield rt
    rt.close()


def test_every_write_to_nexudus_follows_a_flushed_attempt_statement(
    paced: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last attempt statement before each POST or PUT waits for the disk; before a lookup it need not."""
    events: list[tuple[str, str]] = []
    event.listen(paced.engine, "before_cursor_execute", lambda _c, _k, sql, *_: events.append(("sql", sql)))
    real_send = httpx.Client.send

    def send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if request.url.path != AUTH_ENDPOINT:  # a token grant carries no lead
            events.append(("http", request.method))
        return real_send(client, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    for n in range(2):  # the first also makes the account's row and logs in
        contact = {"full_name": f"Ada Disk{n}", "email": f"ada{n}@disk.example", "company": f"Disk {n}"}
        lead_id = ingest(paced, canonical(external_id=f"disk-{n}", contact=contact))
        assert process(paced, lead_id, owner="test", enqueue=len) == "delivered"

    before: dict[str, list[bool]] = {"write": [], "lookup": []}
    for n, (kind, what) in enumerate(events):
        if kind == "http":
            attempt = next(
                sql for k, sql in reversed(events[:n]) if k == "sql" and "delivery_attempts" in sql
            )
            before["lookup" if what == "GET" else "write"].append(UNFLUSHED_CLAUSE in attempt)
    assert before["write"] and not any(before["write"])  # every create's and update's: flushed
    assert before["lookup"] and all(before["lookup"])  # a lookup's need not wait
    unflushed = [sql for kind, sql in events if kind == "sql" and UNFLUSHED_CLAUSE in sql]
    assert any(sql.lstrip().startswith("WITH clock AS") for sql in unflushed)  # the budget's reservation


def test_the_budgets_statements_do_not_wait_for_the_disk() -> None:
    assert all(UNFLUSHED_CLAUSE in statement.text for statement in (RESERVE, PACE, PENALISE))


def test_the_settling_does_not_wait_for_the_disk(runtime: Runtime) -> None:
    """After the last write: a settling lost is found again by the next run (test_exactly_once)."""
    statements: list[str] = []
    event.listen(runtime.engine, "before_cursor_execute", lambda _c, _k, sql, *_: statements.append(sql))
    lead_id = ingest(runtime, canonical(external_id="settle-unflushed"))
    assert process(runtime, lead_id, owner="test", enqueue=len) == "delivered"
    settling = [sql for sql in statements if "UPDATE leads SET state=" in " ".join(sql.split())]
    assert settling and UNFLUSHED_CLAUSE in settling[-1]
    assert "delivered_at" in settling[-1]  # the settling itself, not the reading's or the claim's
