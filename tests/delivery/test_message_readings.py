"""A message's readings first, their leases in one statement (``pipeline.read_message``).

Real Postgres ledger and sandbox; a broken reading and the ledger's outage are shaped
by standing in for one lead's reading (rare edges).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from leadrelay.db import utcnow
from leadrelay.driver import unit
from leadrelay.ledger import start_readings
from leadrelay.models import LeadState
from leadrelay.runtime import Runtime
from leadrelay.worker import pipeline, tasks
from leadrelay.worker.normalise import Normalised
from tests.helpers import canonical, ingest, lead, set_lead


def _leads(rt: Runtime, name: str, count: int) -> list[int]:
    people = [{"full_name": f"Reading {name} {n}", "email": f"{name}.{n}@example.org"} for n in range(count)]
    return [ingest(rt, canonical(external_id=f"{name}-{n}", contact=p)) for n, p in enumerate(people)]


def _owners(ids: list[int]) -> dict[int, str]:
    return {lead_id: f"owner-{lead_id}" for lead_id in ids}


def _reading_fails(monkeypatch: pytest.MonkeyPatch, failing: int, error: Exception) -> None:
    real = pipeline._read_leased

    def read(rt: Runtime, lead_id: int, *, owner: str) -> Normalised:
        if lead_id == failing:
            raise error
        return real(rt, lead_id, owner=owner)

    monkeypatch.setattr(pipeline, "_read_leased", read)


def test_the_leases_of_fresh_received_leads_are_taken_each_under_its_owner(runtime: Runtime) -> None:
    fresh, counted, leased, read, locked = _leads(runtime, "lease", 5)
    set_lead(runtime, counted, unfinished_runs=1)  # a reading of it was left unfinished: read alone
    set_lead(runtime, leased, lease_owner="another", lease_until=utcnow() + timedelta(minutes=5))
    set_lead(runtime, read, state=LeadState.normalised)
    owners = _owners([fresh, counted, leased, read, locked])
    with runtime.engine.connect() as other:  # another transaction holds one: skipped, not waited for
        other.execute(text("SELECT id FROM leads WHERE id = :id FOR UPDATE"), {"id": locked})
        with unit(runtime.sessions, autocommit=True) as work:
            assert start_readings(work, owners, lease_seconds=60) == {fresh}
        other.rollback()
    row = lead(runtime, fresh)
    assert (row.lease_owner, row.unfinished_runs, row.state) == ("owner-1", 1, LeadState.received)
    assert lead(runtime, counted).lease_owner is None and lead(runtime, locked).lease_owner is None
    assert lead(runtime, leased).lease_owner == "another"
    with unit(runtime.sessions, autocommit=True) as work:
        assert start_readings(work, {}, lease_seconds=60) == set()


def test_a_message_leases_its_readings_in_one_statement_then_delivers(
    runtime: Runtime, sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _leads(runtime, "set", 3)
    seen: list[str] = []
    event.listen(runtime.engine, "before_cursor_execute", lambda *a: seen.append(" ".join(a[2].split())))
    monkeypatch.setattr(tasks, "current_runtime", lambda: runtime)
    assert tasks.process_leads.run(list(ids)) == ["delivered"] * 3
    assert len([sql for sql in seen if "unnest(CAST(" in sql]) == 1
    # no lead's own reading lease, and every reading before the first claim
    assert not [sql for sql in seen if sql.startswith("UPDATE leads SET unfinished_runs=(leads.unfinished")]
    reads = [n for n, sql in enumerate(seen) if sql.startswith("SELECT leads.id, leads.channel")]
    claims = [n for n, sql in enumerate(seen) if "state=%(state)s::VARCHAR" in sql]
    assert len(reads) == 3 and len(claims) == 3 and max(reads) < min(claims)
    assert all(lead(runtime, n).unfinished_runs == 0 for n in ids)


def test_a_reading_that_breaks_is_raised_in_its_turn_and_the_rest_go_on(
    runtime: Runtime, sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, broken, last = ids = _leads(runtime, "broken", 3)
    _reading_fails(monkeypatch, broken, RuntimeError("a bug"))
    owners = _owners(ids)
    readings = pipeline.read_message(runtime, owners)
    assert isinstance(readings[broken], RuntimeError)
    assert {readings[first].state, readings[last].state} == {LeadState.normalised}  # type: ignore[union-attr]
    assert pipeline.process(runtime, first, owner=owners[first], reading=readings[first]) == "delivered"
    with pytest.raises(RuntimeError):
        pipeline.process(runtime, broken, owner=owners[broken], reading=readings[broken])
    row = lead(runtime, broken)  # what broke it is kept, its lease given back for the next try
    assert (row.state, row.lease_owner, row.unfinished_runs) == (LeadState.received, None, 1)
    assert row.last_error == "RuntimeError in processing"
    monkeypatch.undo()
    assert pipeline.process(runtime, broken, owner="again") == "delivered"  # read alone this time
    assert pipeline.process(runtime, last, owner=owners[last], reading=readings[last]) == "delivered"


def test_the_ledger_unreachable_ends_the_readings(
    runtime: Runtime, sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, down, last = ids = _leads(runtime, "down", 3)
    _reading_fails(monkeypatch, down, OperationalError("SELECT 1", {}, Exception("connection refused")))
    readings = pipeline.read_message(runtime, _owners(ids))
    assert set(readings) == {first, down} and isinstance(readings[down], OperationalError)
    # leased and not read: it waits for its lease to run out, as a killed worker's lead does
    row = lead(runtime, last)
    assert (row.state, row.lease_owner) == (LeadState.received, f"owner-{last}")


def test_one_lead_or_no_lease_reads_each_lead_alone(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _leads(runtime, "alone", 2)
    assert pipeline.read_message(runtime, _owners(ids[:1])) == {}

    def down(*_: object, **__: object) -> set[int]:
        raise OperationalError("UPDATE", {}, Exception("connection refused"))

    monkeypatch.setattr(pipeline, "start_readings", down)
    assert pipeline.read_message(runtime, _owners(ids)) == {}
    assert all(lead(runtime, n).lease_owner is None for n in ids)
