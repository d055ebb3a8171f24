"""Several statements in one round trip (leadrelay.driver.execute_together): in order, all or nothing.

The claim sends the account's lock, the person's lock and the claim itself together:
what the worker reads back is the last one's rows, and a failure anywhere stops the
rest and leaves the unit to roll back whole, as statements sent one by one would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from leadrelay.db import kept_connections, make_engine, make_session_factory
from leadrelay.driver import SessionUnit, Unit, unit
from leadrelay.models import Lead
from tests.conftest import fresh_ledger
from tests.test_driver import _INSERT, _NOTE, _RETURNING, AT, _count


@pytest.fixture
def sessions(clean_db: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(clean_db)
    yield make_session_factory(engine)
    engine.dispose()


def _last_id(sessions: sessionmaker[Session]) -> int:
    """The ids the leads' sequence has handed out: a rollback does not give them back."""
    with sessions() as session:
        return int(session.execute(text("SELECT last_value FROM leads_id_seq")).scalar_one())


def _insert(key: str) -> tuple[Any, dict[str, Any]]:
    return _INSERT, {"_channel": "canonical", "_key": key, "_at": AT}


def test_steps_run_in_order_in_one_pipeline_and_give_the_last_ones_rows(
    sessions: sessionmaker[Session], pipelines: list[int]
) -> None:
    with kept_connections(sessions):
        with unit(sessions) as work:
            assert type(work) is Unit
            work.execute(*_insert("a"))
        with unit(sessions) as work:
            lead_id = work.execute(select(Lead.id), {})[0][0]
            pipelines.clear()
            rows = work.execute_together(
                [_insert("b"), (_NOTE, {"_id": lead_id}), (_RETURNING, {"_id": lead_id, "_note": "last"})]
            )
            assert pipelines == [3]  # the three together
    assert [(row[0], row[4]) for row in rows] == [(lead_id, "last")]  # the UPDATE's, after the note
    assert rows.rowcount == 1
    assert _count(sessions) == 2  # and the unit committed the insert with them


def test_a_step_that_fails_stops_the_ones_after_it_and_the_unit_rolls_back_whole(
    sessions: sessionmaker[Session], pipelines: list[int]
) -> None:
    with kept_connections(sessions):
        with unit(sessions) as work:
            work.execute(*_insert("same"))
        before = _last_id(sessions)
        with pytest.raises(IntegrityError) as raised, unit(sessions) as work:
            work.execute_together([_insert("other"), _insert("same"), _insert("third")])
        assert isinstance(raised.value.orig, psycopg.errors.UniqueViolation)
        assert "[parameters:" not in str(raised.value)  # personal data: never in an exception's text
        assert _count(sessions) == 1  # "other" rolled back
        assert _last_id(sessions) == before + 2  # "other" and "same" took an id; "third" never ran
        with unit(sessions) as work:  # the connection serves the next unit
            work.execute_together([_insert("fourth"), _insert("fifth")])
    assert _count(sessions) == 3
    with sessions() as session:
        assert set(session.scalars(select(Lead.intake_key))) == {"same", "fourth", "fifth"}


@pytest.mark.parametrize("database", ["postgres", "sqlite"])
def test_a_sessions_unit_runs_the_same_steps(
    request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> None:
    engine = make_engine(fresh_ledger(request, tmp_path, database))
    sessions = make_session_factory(engine)
    try:
        with unit(sessions) as work:
            assert isinstance(work, SessionUnit)  # no kept connection: a session's unit
            work.execute(*_insert("a"))
            lead_id = work.execute(select(Lead.id), {})[0][0]
            rows = work.execute_together(
                [(_NOTE, {"_id": lead_id}), (_RETURNING, {"_id": lead_id, "_note": "x"})]
            )
        assert [(row[0], row[4]) for row in rows] == [(lead_id, "x")]
        with pytest.raises(IntegrityError), unit(sessions) as work:
            work.execute_together([_insert("b"), _insert("a")])
        assert _count(sessions) == 1
    finally:
        engine.dispose()
