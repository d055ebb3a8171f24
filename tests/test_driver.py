"""Units of work on the psycopg connection itself (leadrelay.driver): what a session gave, kept.

Each test runs the same prebuilt statements through SQLAlchemy and through the
driver and compares, or breaks the connection and checks what the worker's
recovery reads: SQLAlchemy's error classes, an invalidated connection, a fresh one next.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import BigInteger, Executable, bindparam, event, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, PendingRollbackError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from leadrelay.db import kept_connections, make_engine, make_session_factory, transaction
from leadrelay.driver import Rows, SessionUnit, Unit, unit
from leadrelay.models import Lead, LeadState, NexudusAccount
from leadrelay.statements import DriverStatement

BACKEND_PID = text("SELECT pg_backend_pid()")
# the prebuilt kinds the worker runs: RETURNING typed columns, an IN of constants, a guarded UPDATE
_RETURNING = (
    update(Lead)
    .where(Lead.id == bindparam("_id", type_=BigInteger()))
    .values(note=bindparam("_note"))
    .returning(Lead.id, Lead.state, Lead.received_at, Lead.raw_meta, Lead.note)
)
_ALIVE = select(Lead.id, Lead.state).where(
    Lead.state.in_([LeadState.received, LeadState.normalised]), Lead.note == bindparam("_note")
)
_INSERT = insert(Lead).values(
    channel=bindparam("_channel"),
    source="webhook",
    intake_key=bindparam("_key"),
    raw_body=b"{}",
    raw_sha256="0" * 64,
    raw_meta={"kind": "test"},
    state=LeadState.received,
    received_at=bindparam("_at", type_=Lead.__table__.c["received_at"].type),
    state_changed_at=bindparam("_at", type_=Lead.__table__.c["received_at"].type),
    attempts=0,
    unfinished_runs=0,
)
_NOTE = update(Lead).where(Lead.id == bindparam("_id", type_=BigInteger())).values(note="n")
AT = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.fixture
def sessions(clean_db: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(clean_db)
    yield make_session_factory(engine)
    engine.dispose()


def _add(work: Unit, key: str) -> None:
    work.execute(_INSERT, {"_channel": "canonical", "_key": key, "_at": AT})


def _count(sessions: sessionmaker[Session]) -> int:
    with sessions() as other:
        return int(other.execute(select(func.count()).select_from(Lead)).scalar_one())


def test_rows_are_what_sqlalchemy_gives(sessions: sessionmaker[Session]) -> None:
    with kept_connections(sessions):
        with unit(sessions) as work:
            assert type(work) is Unit  # on the kept connection, no session
            _add(work, "a")
        with unit(sessions) as work:
            lead_id = work.execute(select(Lead.id), {})[0][0]
            driven = work.execute(_RETURNING, {"_id": lead_id, "_note": "n"})
        with transaction(sessions) as session:
            through_sqlalchemy = session.execute(_RETURNING, {"_id": lead_id, "_note": "n"}).one()
    assert driven == [tuple(through_sqlalchemy)]
    assert driven[0][1] == LeadState.received
    assert driven[0][2] == AT and driven[0][2].tzinfo is not None  # UTC-aware
    assert driven[0][3] == {"kind": "test"}
    assert driven.rowcount == 1


def test_an_in_of_constants_is_expanded_once_and_reads_the_same(sessions: sessionmaker[Session]) -> None:
    with kept_connections(sessions), unit(sessions) as work:
        _add(work, "a")
        _add(work, "b")
        work.execute(update(Lead).where(Lead.intake_key == "b").values(state=LeadState.dead), {})
        work.execute(update(Lead).values(note="x"), {})
        driven = work.execute(_ALIVE, {"_note": "x"})
        assert driven == [tuple(r) for r in work.orm().execute(_ALIVE, {"_note": "x"})]
    assert [state for _, state in driven] == [LeadState.received]
    assert "IN (%(state_1_1)s" in DriverStatement(_ALIVE).sql


def test_what_sqlalchemy_fills_in_per_call_is_refused() -> None:
    with pytest.raises(ValueError, match="ANY"):
        DriverStatement(select(Lead.id).where(Lead.id.in_(bindparam("_ids", expanding=True))))
    with pytest.raises(ValueError, match="last_sent_at"):  # a Python-side column default
        DriverStatement(insert(NexudusAccount).values(account=bindparam("_a")))


def test_errors_are_sqlalchemys_without_the_values(sessions: sessionmaker[Session]) -> None:
    with kept_connections(sessions):
        with unit(sessions) as work:
            _add(work, "same")
        with pytest.raises(IntegrityError) as raised, unit(sessions) as work:
            _add(work, "other")
            _add(work, "same")
        assert isinstance(raised.value.orig, psycopg.errors.UniqueViolation)
        assert "[parameters:" not in str(raised.value)  # personal data: never in an exception's text
        assert _count(sessions) == 1  # the failed unit rolled back whole
        with unit(sessions) as work:  # and the next one works
            _add(work, "third")
    assert _count(sessions) == 2


def test_a_connection_postgres_ended_is_invalidated_and_replaced(sessions: sessionmaker[Session]) -> None:
    with kept_connections(sessions):
        with unit(sessions) as work:
            pid = work.execute(BACKEND_PID, {})[0][0]
        with sessions() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid}).scalar()
        # the kept connection's ping sees the goodbye and takes a fresh one ...
        with unit(sessions) as work:
            fresh = work.execute(BACKEND_PID, {})[0][0]
        assert fresh != pid
        # ... and one ended mid-unit raises SQLAlchemy's OperationalError (the worker's recovery
        # reads it as "the ledger is unreachable"), with the connection invalidated, not reused
        with pytest.raises(OperationalError) as raised, unit(sessions) as work:
            with sessions() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": fresh})
            work.execute(BACKEND_PID, {})
        assert raised.value.connection_invalidated
        # a caller that carried on in that unit would have run the rest on a fresh connection,
        # outside the unit's transaction: refused
        with pytest.raises(PendingRollbackError), unit(sessions) as work:
            with sessions() as other:
                other.execute(
                    text("SELECT pg_terminate_backend(:pid, 10000)"),
                    {"pid": work.execute(BACKEND_PID, {})[0][0]},
                )
            with pytest.raises(OperationalError):
                work.execute(BACKEND_PID, {})
            work.execute(BACKEND_PID, {})
        with unit(sessions) as work:
            assert work.execute(BACKEND_PID, {})[0][0] not in (pid, fresh)


def test_a_connection_keeps_one_cursor_until_it_is_replaced(sessions: sessionmaker[Session]) -> None:
    """Made once a connection (a cursor a statement was a quarter of a one-statement unit's CPU)."""
    engine = sessions.kw["bind"]
    cursors: list[object] = []
    event.listen(engine, "before_cursor_execute", lambda _c, cursor, *_: cursors.append(cursor))
    with kept_connections(sessions):
        with unit(sessions) as work:
            _add(work, "a")  # no rows: nothing left behind for the next statement to read
            lead_id = work.execute(select(Lead.id), {})[0][0]
            updated = work.execute(_NOTE, {"_id": lead_id})
            assert (list(updated), updated.rowcount) == ([], 1)
            pid = work.execute(BACKEND_PID, {})[0][0]
        with unit(sessions) as work:
            assert work.execute(_RETURNING, {"_id": lead_id, "_note": "m"})[0][4] == "m"
        assert len(set(map(id, cursors))) == 1
        with sessions() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid})
        with unit(sessions) as work:  # a fresh connection, and its own cursor
            assert work.execute(BACKEND_PID, {})[0][0] != pid
        assert not cursors[-1].closed  # type: ignore[attr-defined]
    assert cursors[-1] is not cursors[0]
    # back in the pool, the connection keeps no cursor, nor the last result it held
    assert cursors[-1].closed  # type: ignore[attr-defined]


def test_listeners_see_every_statement_and_commit(sessions: sessionmaker[Session]) -> None:
    engine = sessions.kw["bind"]
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    event.listen(engine, "commit", lambda *_: seen.append("COMMIT"))
    with kept_connections(sessions):
        with unit(sessions) as work:
            _add(work, "a")
        with unit(sessions, autocommit=True) as work:
            work.execute(BACKEND_PID, {})
    assert [s.split()[0] for s in seen] == ["INSERT", "COMMIT", "SELECT"]


def test_an_orm_step_joins_the_units_transaction(sessions: sessionmaker[Session]) -> None:
    with kept_connections(sessions):
        with pytest.raises(RuntimeError), unit(sessions) as work:
            _add(work, "a")
            work.orm().add(NexudusAccount(account="main"))
            raise RuntimeError("the unit fails")
        assert _count(sessions) == 0
        with unit(sessions) as work:
            _add(work, "a")
            work.orm().add(NexudusAccount(account="main"))  # flushed by the unit's commit
    with sessions() as other:
        assert other.scalars(select(NexudusAccount.account)).all() == ["main"]
    assert _count(sessions) == 1


def test_without_a_kept_connection_it_is_a_sessions_unit(sessions: sessionmaker[Session]) -> None:
    with unit(sessions) as work:
        assert isinstance(work, SessionUnit)
        _add(work, "a")
        rows = work.execute(select(Lead.state), {})
    assert isinstance(rows, Rows) and rows == [(LeadState.received,)]
    assert _count(sessions) == 1


def test_every_prebuilt_statement_of_the_hot_path_compiles_for_the_driver() -> None:
    """Compiled at first use: a column default added later must fail here, not on a rare path at run time."""
    import leadrelay.ledger.leases
    import leadrelay.ledger.records
    import leadrelay.nexudus.budget
    import leadrelay.worker.dedupe
    import leadrelay.worker.delivery.attempts
    import leadrelay.worker.delivery.customers
    import leadrelay.worker.dispatch
    import leadrelay.worker.follow_ups
    import leadrelay.worker.introductions
    from leadrelay.statements import PerDialect

    modules = [
        leadrelay.ledger.leases,
        leadrelay.ledger.records,
        leadrelay.nexudus.budget,
        leadrelay.worker.dedupe,
        leadrelay.worker.delivery.attempts,
        leadrelay.worker.delivery.customers,
        leadrelay.worker.dispatch,
        leadrelay.worker.follow_ups,
        leadrelay.worker.introductions,
    ]
    orm_only = {"_LOCK_ACCOUNT"}  # an ORM entity's row, loaded by a session (the embedded budget)
    found = {}
    for module in modules:
        for name, value in vars(module).items():
            values = value.items() if isinstance(value, dict) else [(None, value)]
            for key, each in values:
                if isinstance(each, PerDialect):
                    each = each.build(True)
                if isinstance(each, Executable) and name not in orm_only:
                    found[f"{module.__name__}.{name}[{key}]"] = each
    assert len(found) >= 30  # 35 as written
    for name, stmt in found.items():
        assert DriverStatement(stmt).sql, name


def test_a_session_opened_and_left_unused_does_not_keep_the_units_statements_from_committing(
    sessions: sessionmaker[Session],
) -> None:
    """A delivery's pending writes ride in a unit whose session (Hold.tx) may go unused: they still commit."""
    with kept_connections(sessions):
        with unit(sessions) as work:
            pid = work.execute(BACKEND_PID, {})[0][0]
            _add(work, "a")
            work.orm()  # opened, never used: its commit alone would send nothing
        assert _count(sessions) == 1
        with unit(sessions) as work:  # the kept connection, idle again: not inside that transaction
            assert work.execute(BACKEND_PID, {})[0][0] == pid
            _add(work, "b")
            work.orm().add(NexudusAccount(account="main"))  # a session that is used: one commit for both
        assert _count(sessions) == 2


def test_a_bind_processors_error_is_sqlalchemys_too(sessions: sessionmaker[Session]) -> None:
    naive = datetime(2026, 12, 3, 10, 0)
    with (
        kept_connections(sessions),
        pytest.raises(StatementError, match="naive datetime"),
        unit(sessions) as work,
    ):
        work.execute(_INSERT, {"_channel": "canonical", "_key": "a", "_at": naive})
