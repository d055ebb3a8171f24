"""Which of a delivery's commits wait for the disk, and which need not (Postgres).

A statement carrying ``statements.UNFLUSHED_CLAUSE`` commits without waiting for its
WAL flush: the reading's lease, the claim, the budget's reservations and sends, and a
lookup's attempt statement. What must stay true (docs/guarantees.md, "Commits that do
not wait for the disk"): the clause changes only the transaction it runs in, never the
connection it leaves in the pool; and every write to Nexudus is preceded by a flushed
statement — its own attempt statement — which, the WAL being flushed in order, puts
every earlier unflushed commit on disk before the write leaves.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from leadrelay import ledger
from leadrelay.db import statement_commits, transaction
from leadrelay.nexudus.tokens import AUTH_ENDPOINT
from leadrelay.runtime import Runtime
from leadrelay.statements import PACE, PENALISE, RESERVE, UNFLUSHED_CLAUSE
from leadrelay.worker.pipeline import process
from tests.helpers import canonical, ingest

SHOW = text("SHOW synchronous_commit")


def test_the_clause_unflushes_its_own_transaction_and_no_other(runtime: Runtime) -> None:
    lead_id = ingest(runtime, canonical())
    with transaction(runtime.sessions) as session:
        assert session.execute(SHOW).scalar_one() == "on"
        reading = ledger.start_reading(session, lead_id, owner="A", lease_seconds=60)
        assert reading is not None
        assert session.execute(SHOW).scalar_one() == "off"  # this transaction commits unflushed
    with transaction(runtime.sessions) as session:
        assert session.execute(SHOW).scalar_one() == "on"  # the next one on the connection does not
    with statement_commits(runtime.sessions) as session:  # one statement, its own commit
        session.execute(PACE, {"account": "nobody", "gap": 0.1})  # no row: nothing written either way
        assert session.execute(SHOW).scalar_one() == "on"  # nothing left behind on the connection


def test_every_write_to_nexudus_follows_a_flushed_statement(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last statement before each POST or PUT waits for the disk; before a lookup it need not."""
    events: list[tuple[str, str]] = []
    event.listen(runtime.engine, "before_cursor_execute", lambda _c, _k, sql, *_: events.append(("sql", sql)))
    real_send = httpx.Client.send

    def send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if request.url.path != AUTH_ENDPOINT:  # a token grant carries no lead
            events.append(("http", request.method))
        return real_send(client, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    for n in range(2):  # the first also makes the account's row and logs in
        contact = {"full_name": f"Ada Disk{n}", "email": f"ada{n}@disk.example", "company": f"Disk {n}"}
        lead_id = ingest(runtime, canonical(external_id=f"disk-{n}", contact=contact))
        assert process(runtime, lead_id, owner="test", enqueue=len) == "delivered"

    before: dict[str, list[bool]] = {"write": [], "lookup": []}
    for n, (kind, what) in enumerate(events):
        if kind == "http":
            last = next(sql for k, sql in reversed(events[:n]) if k == "sql")
            before["lookup" if what == "GET" else "write"].append(UNFLUSHED_CLAUSE in last)
    assert before["write"] and not any(before["write"])  # every create's and update's: flushed
    assert before["lookup"] and all(before["lookup"])  # a lookup's need not wait
    unflushed = [sql for kind, sql in events if kind == "sql" and UNFLUSHED_CLAUSE in sql]
    assert any(sql.lstrip().startswith("WITH clock AS") for sql in unflushed)  # the budget's reservation


def test_the_budgets_statements_do_not_wait_for_the_disk() -> None:
    assert all(UNFLUSHED_CLAUSE in statement.text for statement in (RESERVE, PACE, PENALISE))
