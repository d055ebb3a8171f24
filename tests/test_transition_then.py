"""A move and a read in one statement (ledger.transition_then), as a reading moves a lead and compares it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, select
from sqlalchemy.orm import Session, sessionmaker

from leadrelay import ledger
from leadrelay.db import make_engine, make_session_factory, transaction
from leadrelay.models import Lead, LeadState
from tests.conftest import fresh_ledger
from tests.helpers import record_empty

# the other leads still waiting to be read, as the same-company query asks: never the lead itself
_OTHERS = select(Lead.id, Lead.state).where(Lead.id != bindparam("_id")).order_by(Lead.id)


@pytest.fixture(params=["postgres", "sqlite"])
def sessions(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(fresh_ledger(request, tmp_path, request.param))
    yield make_session_factory(engine)
    engine.dispose()


def _leads(sessions: sessionmaker[Session], count: int) -> list[int]:
    with transaction(sessions) as session:
        return [record_empty(session, f"then:{n}") for n in range(count)]


def _statements(engine: Engine) -> list[str]:
    """The statements the engine runs from now on (SQLite's BEGIN left out: Postgres's is no statement)."""
    seen: list[str] = []

    def statement(*args: Any) -> None:
        if not args[2].startswith("BEGIN"):
            seen.append(args[2])

    event.listen(engine, "before_cursor_execute", statement)
    return seen


def _ignore(session: Session, lead_id: int, *, others_of: int, **extra: Any) -> Any:
    """Move a received lead to ignored, reading the others of ``others_of`` with it."""
    return ledger.transition_then(
        session,
        lead_id,
        then=(_OTHERS, {"_id": others_of}),
        from_states=extra.pop("from_states", [LeadState.received]),
        to=LeadState.ignored,
        **extra,
    )


def test_the_move_and_the_read_go_together_on_postgres(sessions: sessionmaker[Session]) -> None:
    first, second, third = _leads(sessions, 3)
    engine = sessions.kw["bind"]
    seen = _statements(engine)
    with transaction(sessions) as session:
        rows = _ignore(session, first, others_of=first, note="moved with a read")
    assert [tuple(row) for row in rows] == [(second, "received"), (third, "received")]
    assert len(seen) == (1 if engine.dialect.name == "postgresql" else 2)  # one round trip on Postgres
    with sessions() as session:
        moved = session.get(Lead, first)
        assert moved is not None and (moved.state, moved.note) == (LeadState.ignored, "moved with a read")


def test_a_move_that_finds_its_lead_elsewhere_changes_nothing_and_still_reads(
    sessions: sessionmaker[Session],
) -> None:
    first, second = _leads(sessions, 2)
    with transaction(sessions) as session:
        rows = _ignore(session, first, others_of=first, from_states=[LeadState.dead])
    assert [row[0] for row in rows] == [second]
    with sessions() as session:
        kept = session.get(Lead, first)
        assert kept is not None and kept.state == LeadState.received


def test_a_value_the_move_and_the_read_give_differently_is_refused(sessions: sessionmaker[Session]) -> None:
    first, second = _leads(sessions, 2)
    with transaction(sessions) as session, pytest.raises(ValueError, match="_id"):
        _ignore(session, first, others_of=second)


def test_a_guard_the_move_alone_would_take_is_refused(sessions: sessionmaker[Session]) -> None:
    """transition()'s owner, flushed and side_writes would be column names here: refused, on any database."""
    (first,) = _leads(sessions, 1)
    with transaction(sessions) as session, pytest.raises(TypeError, match="owner"):
        _ignore(session, first, others_of=first, owner="someone")
