"""One contract for intake's storage: the same cases on every implementation and database.

``session``: :func:`record_inbound` through a SQLAlchemy session (its own commit, in
a worker thread), on SQLite and on Postgres; ``pool``: the receiver's psycopg pool,
on Postgres. Both run the statements of :mod:`leadrelay.statements`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from leadrelay.db import make_engine, make_session_factory
from leadrelay.intake.store import (
    CONTENT_TYPE_CHARS,
    Inbound,
    Intake,
    IntakeStore,
    PoolIntakeStore,
    SessionIntakeStore,
    conninfo,
)
from leadrelay.models import Lead, LeadState
from tests.conftest import fresh_ledger

CASES = ["session-sqlite", "session-postgres", "pool-postgres"]


@pytest.fixture(params=CASES)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, sessionmaker[Session]]]:
    """(implementation, sessions on its ledger): a fresh, migrated ledger."""
    kind, database = request.param.split("-")
    engine = make_engine(fresh_ledger(request, tmp_path, database))
    yield kind, make_session_factory(engine)
    engine.dispose()


def store_for(kind: str, sessions: sessionmaker[Session]) -> IntakeStore:
    if kind == "pool":
        return PoolIntakeStore(conninfo(sessions.kw["bind"]), size=3)
    return SessionIntakeStore(sessions)


def run(kind: str, sessions: sessionmaker[Session], *items: Inbound) -> list[tuple[Intake, bool]]:
    """Record the items at once (concurrently), on a store opened and closed around them."""

    async def scenario() -> list[tuple[Intake, bool]]:
        store = store_for(kind, sessions)
        await store.open()
        try:
            return list(await asyncio.gather(*(store.record(item) for item in items)))
        finally:
            await store.close()

    return asyncio.run(scenario())


def item(key: str, body: bytes = b'{"a": 1}', **changes: object) -> Inbound:
    fields: dict[str, object] = {
        "channel": "canonical",
        "source": "webhook",
        "intake_key": key,
        "body": body,
        "content_type": "application/json",
        "meta": {"delivery_id": key},
    }
    fields.update(changes)
    return Inbound(**fields)  # type: ignore[arg-type]


def test_a_new_item_is_stored_received_and_due_and_must_be_published(ledger) -> None:
    kind, sessions = ledger
    before = datetime.now(UTC)
    [(intake, publish)] = run(kind, sessions, item("webhook:canonical:a"))
    assert intake.duplicate is False and publish is True
    with sessions() as session:
        lead = session.get(Lead, intake.lead_id)
        assert lead is not None
        assert (lead.channel, lead.source, lead.intake_key) == ("canonical", "webhook", "webhook:canonical:a")
        assert lead.raw_body == b'{"a": 1}'
        assert lead.raw_sha256 == hashlib.sha256(b'{"a": 1}').hexdigest()
        assert lead.raw_meta == {"delivery_id": "webhook:canonical:a"}
        assert lead.content_type == "application/json"
        assert (lead.state, lead.attempts, lead.unfinished_runs) == (LeadState.received, 0, 0)
        assert lead.received_at >= before
        assert lead.received_at.tzinfo is not None
        # due at once; enqueued at receipt (the sweeper re-enqueues it if the publish never happens)
        assert lead.state_changed_at == lead.next_attempt_at == lead.enqueued_at == lead.received_at


def test_a_redelivery_is_recognised_by_its_intake_key_and_not_published_again(ledger) -> None:
    kind, sessions = ledger
    [(first, _)] = run(kind, sessions, item("webhook:canonical:a"))
    [(again, publish)] = run(kind, sessions, item("webhook:canonical:a", body=b'{"a": 2}'))
    [(other, _)] = run(kind, sessions, item("webhook:canonical:b"))
    assert (again.lead_id, again.duplicate, publish) == (first.lead_id, True, False)
    assert other.lead_id != first.lead_id and not other.duplicate
    with sessions() as session:
        kept = session.execute(select(Lead.raw_body).where(Lead.id == first.lead_id)).scalar_one()
    assert kept == b'{"a": 1}'  # the first delivery's bytes, never overwritten


def test_simultaneous_deliveries_of_one_item_store_one_row_and_publish_it_once(ledger) -> None:
    kind, sessions = ledger
    results = run(kind, sessions, *(item("webhook:canonical:same") for _ in range(6)))
    assert len({intake.lead_id for intake, _ in results}) == 1
    assert sum(not intake.duplicate for intake, _ in results) == 1
    assert sum(publish for _, publish in results) == 1
    with sessions() as session:
        assert len(session.execute(select(Lead.id)).all()) == 1


def test_a_long_content_type_is_cut_and_a_missing_one_and_meta_are_stored_empty(ledger) -> None:
    kind, sessions = ledger
    long_type = "application/json; " + "x" * 400
    (cut, _), (none, _) = run(
        kind, sessions, item("k:long", content_type=long_type), item("k:none", content_type=None, meta=None)
    )
    with sessions() as session:
        assert session.get(Lead, cut.lead_id).content_type == long_type[:CONTENT_TYPE_CHARS]  # type: ignore[union-attr]
        lead = session.get(Lead, none.lead_id)
        assert lead is not None and lead.content_type is None and lead.raw_meta == {}


def test_the_time_of_receipt_can_be_given(ledger) -> None:
    kind, sessions = ledger
    at = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)

    async def scenario() -> Intake:
        store = store_for(kind, sessions)
        await store.open()
        try:
            return (await store.record(item("k:at"), now=at))[0]
        finally:
            await store.close()

    intake = asyncio.run(scenario())
    with sessions() as session:
        lead = session.get(Lead, intake.lead_id)
        assert lead is not None and lead.received_at == at == lead.enqueued_at
