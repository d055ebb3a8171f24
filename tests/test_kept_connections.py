"""A task's units of work keep two connections (db.kept_connections): the same commits, fewer checkouts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from leadrelay.db import kept_connections, make_engine, make_session_factory, statement_commits, transaction
from leadrelay.models import Lead
from leadrelay.runtime import Runtime
from leadrelay.statements import UNFLUSHED_CLAUSE
from leadrelay.worker.pipeline import process
from tests.helpers import Checkouts, canonical, ingest, record_empty

BACKEND_PID = text("SELECT pg_backend_pid()")


@pytest.fixture
def sessions(clean_db: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(clean_db)
    yield make_session_factory(engine)
    engine.dispose()


def _checked_out(engine: Engine) -> int:
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


def _leads(sessions: sessionmaker[Session]) -> int:
    with sessions() as other:  # a connection of its own: sees only what is committed
        return int(other.execute(select(func.count()).select_from(Lead)).scalar_one())


def _add(session: Session, n: int) -> None:
    record_empty(session, f"kept:{n}")


def test_units_reuse_one_connection_each_and_commit_as_before(sessions: sessionmaker[Session]) -> None:
    engine = sessions.kw["bind"]
    checkouts = Checkouts(engine)
    backends: dict[str, set[int]] = {"transaction": set(), "autocommit": set()}
    with kept_connections(sessions):
        for n in range(3):
            with transaction(sessions) as session:
                backends["transaction"].add(session.execute(BACKEND_PID).scalar_one())
                _add(session, n)
            assert _leads(sessions) == 2 * n + 1  # committed when the unit ended, not when the block ends
            with statement_commits(sessions) as session:
                backends["autocommit"].add(session.execute(BACKEND_PID).scalar_one())
                _add(session, 100 + n)
            assert _leads(sessions) == 2 * n + 2
        assert _checked_out(engine) == 2
    assert _checked_out(engine) == 0  # both given back when the block ends
    assert [len(pids) for pids in backends.values()] == [1, 1]
    assert backends["transaction"] != backends["autocommit"]
    assert checkouts.count == 2 + 6  # the two kept, and the six counts from other connections


def test_a_failed_unit_rolls_back_and_gives_its_connection_back(sessions: sessionmaker[Session]) -> None:
    checkouts = Checkouts(sessions.kw["bind"])
    with kept_connections(sessions):
        for _ in range(2):
            with transaction(sessions) as session:
                session.execute(BACKEND_PID)
        assert checkouts.count == 1
        with pytest.raises(RuntimeError), transaction(sessions) as session:
            _add(session, 1)
            raise RuntimeError("the unit fails")
        assert _leads(sessions) == 0  # rolled back
        assert checkouts.count == 2  # (the count above used a connection of its own)
        with transaction(sessions) as session:
            assert session.execute(select(func.count()).select_from(Lead)).scalar_one() == 0
        # the failed unit's connection went back to the pool: the next unit checked one out,
        # past the pool's pre-ping, instead of reusing what the failure may have broken
        assert checkouts.count == 3


def test_a_nested_unit_takes_its_own_connection(sessions: sessionmaker[Session]) -> None:
    with kept_connections(sessions), transaction(sessions) as outer:
        _add(outer, 1)
        with transaction(sessions) as inner:
            assert inner.execute(BACKEND_PID).scalar_one() != outer.execute(BACKEND_PID).scalar_one()
            # the inner unit is a transaction of its own: it does not see the outer one's row
            assert inner.execute(select(func.count()).select_from(Lead)).scalar_one() == 0
        with statement_commits(sessions) as auto, statement_commits(sessions) as nested:
            assert auto.execute(BACKEND_PID).scalar_one() != nested.execute(BACKEND_PID).scalar_one()


def test_on_sqlite_nothing_is_kept(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    sessions = make_session_factory(engine)
    with kept_connections(sessions):
        with transaction(sessions) as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
        assert _checked_out(engine) == 0
    engine.dispose()


def test_a_delivery_checks_out_two_connections(runtime: Runtime) -> None:
    """Without the kept connections a lead took a connection from the pool for each of its ~13 units."""
    lead_id = ingest(runtime, canonical())
    checkouts = Checkouts(runtime.engine)
    assert process(runtime, lead_id, owner="test", enqueue=len) == "delivered"
    assert checkouts.count == 2
    assert _checked_out(runtime.engine) == 0


def test_a_kept_connection_that_postgres_ended_is_replaced(sessions: sessionmaker[Session]) -> None:
    """A kept connection sits idle through a Nexudus call; Postgres may end it meanwhile (a restart)."""
    checkouts = Checkouts(sessions.kw["bind"])
    with kept_connections(sessions):
        ended = []
        for autocommit_unit in (transaction, statement_commits):
            with autocommit_unit(sessions) as session:
                ended.append(session.execute(BACKEND_PID).scalar_one())
        with sessions() as other:
            for pid in ended:
                # with a timeout it returns once the backend is gone: without, the next unit's ping
                # could still find it alive and its statement meet the termination (CI, 2026-12-02)
                ended_now = other.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
                assert ended_now.scalar_one() is True
        for n, autocommit_unit in enumerate((transaction, statement_commits)):
            with autocommit_unit(sessions) as session:  # not an error: a fresh connection
                assert session.execute(BACKEND_PID).scalar_one() not in ended
                _add(session, n)
        assert _leads(sessions) == 2
    assert checkouts.count == 2 + 1 + 2 + 1  # kept, the killer's, the two replacements, the count's


def test_a_failed_one_statement_unit_gives_its_connection_back(sessions: sessionmaker[Session]) -> None:
    checkouts = Checkouts(sessions.kw["bind"])
    with kept_connections(sessions):
        with statement_commits(sessions) as session:
            _add(session, 1)
        with pytest.raises(IntegrityError), statement_commits(sessions) as session:
            _add(session, 1)  # the same intake key
            session.execute(text("INSERT INTO leads (id) VALUES (NULL)"))
        with statement_commits(sessions) as session:
            _add(session, 2)
        assert _leads(sessions) == 2
    assert checkouts.count == 2 + 1  # a fresh one after the failure, and the count's


def test_each_thread_keeps_its_own(sessions: sessionmaker[Session]) -> None:
    def backend() -> int:
        with kept_connections(sessions), transaction(sessions) as session:
            pid = int(session.execute(BACKEND_PID).scalar_one())
            barrier.wait(timeout=10)  # both threads hold theirs at once
            return pid

    barrier = threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:
        pids = list(pool.map(lambda _: backend(), range(2)))
    assert len(set(pids)) == 2


SYNCHRONOUS = text("SHOW synchronous_commit")
UNFLUSH = text(f"SELECT {UNFLUSHED_CLAUSE}")


def test_an_unflushed_unit_is_unflushed_alone(sessions: sessionmaker[Session]) -> None:
    """A statement's ``UNFLUSHED_CLAUSE`` holds for its transaction alone: the next unit waits for disk."""
    with kept_connections(sessions):
        with transaction(sessions) as session:
            pid = session.execute(BACKEND_PID).scalar()
            session.execute(UNFLUSH)
            assert session.execute(SYNCHRONOUS).scalar() == "off"
            _add(session, 1)
        with transaction(sessions) as session:
            assert session.execute(BACKEND_PID).scalar() == pid  # the same connection, kept
            assert session.execute(SYNCHRONOUS).scalar() == "on"
        with pytest.raises(DataError), transaction(sessions) as session:
            session.execute(UNFLUSH)
            _add(session, 2)
            session.execute(text("SELECT 1 / 0"))  # refused by Postgres: the unit rolls back
        with transaction(sessions) as session:
            assert session.execute(SYNCHRONOUS).scalar() == "on"
        with statement_commits(sessions) as session:
            assert session.execute(SYNCHRONOUS).scalar() == "on"
    assert _leads(sessions) == 1  # the first committed (not flushed yet is committed), the third not
