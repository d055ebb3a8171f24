"""The worker's hot units of work on the psycopg connection itself, SQLAlchemy's promises kept.

A lead's delivery runs some twenty statements in a dozen units of work, each a
prebuilt Core statement (:mod:`leadrelay.statements`). Through a session, each
costs SQLAlchemy's execution context, its result object and the session's own
begin, commit and close — more CPU than psycopg's round trip (bench/PROFILE.md,
eighteenth pass). Here a statement is compiled once for psycopg and runs on the
connection's own cursor; a unit of work on Postgres is the thread's kept
connection (:func:`leadrelay.db.kept_connections`) with psycopg's commit.

What the session gave, this keeps:

* the same SQL and parameters: the statement's own compilation, its types' bind
  processors (UTC datetimes, JSON) and result processors (enums, datetimes);
* the same errors: a psycopg error is raised as SQLAlchemy's (``OperationalError``,
  ``IntegrityError``, … with ``orig`` and no parameters in its text), which the
  worker's recovery reads; a lost connection is invalidated, as SQLAlchemy does,
  so the next unit takes a fresh one;
* the same events: ``before_cursor_execute`` listeners see every statement and
  ``commit`` listeners every commit (the tests and ``bench.per_lead`` count them).

What it does not do: a lost connection invalidates that connection only (the
pool's others meet the pre-ping, :func:`leadrelay.db.kept_connections`), not the
whole pool; ``handle_error`` and ``after_cursor_execute`` listeners are not
called, and a ``before_cursor_execute`` listener's return value is ignored.

:func:`unit` gives a :class:`Unit` everywhere: on SQLite, or without a kept
connection free, it is a session's (:func:`leadrelay.db.transaction` or
:func:`~leadrelay.db.statement_commits`), whose statements on Postgres still run
through :func:`execute`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, event, exc
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import Pool

from leadrelay.db import held, in_transaction, statement_commits, transaction
from leadrelay.statements import DriverStatement, PerDialect

# by the statement's id, with the statement itself (kept alive: its id is never reused meanwhile);
# one entry written whole, so a thread never sees half of one
_COMPILED: dict[int, tuple[Any, DriverStatement]] = {}


def compiled(stmt: Any) -> DriverStatement:
    """``stmt`` compiled once; only prebuilt, module-level statements come here."""
    found = _COMPILED.get(id(stmt))
    if found is None or found[0] is not stmt:
        found = _COMPILED[id(stmt)] = (stmt, DriverStatement(stmt))
    return found[1]


class Rows(list[tuple[Any, ...]]):
    """A statement's rows (plain tuples, converted as SQLAlchemy converts them) and its row count."""

    rowcount: int = -1


Step = tuple[Any, Mapping[str, Any]]  # a prebuilt statement and its values


def execute(connection: Connection, stmt: Any, values: Mapping[str, Any]) -> Rows:
    """Postgres: ``stmt`` (compiled once) on ``connection``'s psycopg connection, in its transaction."""
    return execute_together(connection, [(stmt, values)])


def execute_together(connection: Connection, steps: Sequence[Step]) -> Rows:
    """Postgres: the steps in order, in one round trip when there are several; the last one's rows.

    Several go out together in psycopg's pipeline mode, and Postgres runs them one after
    another, as it would have, without waiting for the worker between them; the rows of
    all but the last are not read. A transaction's BEGIN, if they open it, still takes a
    round trip of its own (psycopg waits for its answer before it sends the statements).
    The first that fails fails the rest (they do not run), and its error is raised, as
    SQLAlchemy's. Every value is bound before anything is sent. In a unit that commits
    each statement (``autocommit``), several would be one transaction: not done.
    """
    _refuse_if_lost(connection)
    cursor, sql = None, ""
    try:
        bound = [(statement, statement.params(values)) for statement, values in _compiled(steps)]
        cursor = _cursor(connection)
        statement, params = bound[-1]
        sql = statement.sql
        if len(bound) == 1:
            _run(connection, cursor, statement.sql, params)
        else:
            sql = "\n".join(each.sql for each, _ in bound)  # which one failed, Postgres does not say
            with cursor.connection.pipeline():
                for each, each_params in bound:
                    _run(connection, cursor, each.sql, each_params)
        result = cursor.pgresult  # its status, not the cursor's description (a Column object a column)
        returned = result is not None and result.status == _TUPLES_OK
        rows = Rows(statement.rows(cursor.fetchall()) if returned else ())
        rows.rowcount = cursor.rowcount
        return rows
    except Exception as error:
        raise translated(connection, error, sql, cursor) from error


def _run(connection: Connection, cursor: psycopg.Cursor[Any], sql: str, params: Any) -> None:
    if listeners := connection.dispatch.before_cursor_execute:
        listeners(connection, cursor, sql, params, None, False)
    cursor.execute(sql, params)


def _compiled(steps: Sequence[Step]) -> list[tuple[DriverStatement, Mapping[str, Any]]]:
    return [(compiled(stmt.build(True) if isinstance(stmt, PerDialect) else stmt), v) for stmt, v in steps]


_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK
_CURSOR = "leadrelay.driver.cursor"


@event.listens_for(Pool, "checkin")
def _close_cursor(_dbapi: Any, record: Any) -> None:
    """A connection back in the pool keeps no cursor, nor the last result the cursor held."""
    cursor = record.info.pop(_CURSOR, None) if record is not None else None
    if cursor is not None:
        cursor.close()


def _cursor(connection: Connection) -> psycopg.Cursor[Any]:
    """The psycopg connection's one cursor for these statements, made once a checkout.

    Each statement's rows are fetched whole before the next runs on it, and a
    connection serves one thread at a time. Kept in the pool's record of the
    connection (which forgets it when the connection is replaced) until the
    connection goes back to the pool: then it is closed, and the last result it
    held (a lead's fields, say) with it. It takes the connection's adapters as they
    are when it is made.
    """
    info = connection.connection.info
    cursor: psycopg.Cursor[Any] | None = info.get(_CURSOR)
    if cursor is None or cursor.closed:
        dbapi = connection.connection.driver_connection  # psycopg's own, typed as such
        assert isinstance(dbapi, psycopg.Connection)  # a checked-out, valid connection
        cursor = info[_CURSOR] = dbapi.cursor()
    return cursor


def _refuse_if_lost(connection: Connection) -> None:
    """A unit whose connection was lost goes no further: SQLAlchemy would reconnect in its middle."""
    if connection.invalidated:
        raise exc.PendingRollbackError("the unit of work lost its connection; start the unit again")


def translated(connection: Connection, error: Exception, sql: str, cursor: Any = None) -> exc.StatementError:
    """The error as SQLAlchemy raises it; a lost connection invalidated, as SQLAlchemy does.

    A psycopg error becomes its SQLAlchemy class (``OperationalError``, …); any other
    (a bind processor's) a ``StatementError``, as SQLAlchemy wraps it.
    """
    dialect = connection.dialect
    dbapi = None if connection.invalidated else connection.connection.dbapi_connection
    lost = isinstance(error, psycopg.Error) and bool(
        dialect.is_disconnect(error, dbapi, cursor)  # type: ignore[arg-type]  # psycopg's own Error
    )
    if lost and not connection.invalidated:
        connection.invalidate(error)
    return exc.DBAPIError.instance(
        sql, None, error, psycopg.Error, hide_parameters=True, connection_invalidated=lost, dialect=dialect
    )


class Unit:
    """One unit of work: ``execute(stmt, values)`` gives the rows; the unit commits when it ends.

    :meth:`orm` opens a session on the unit's own connection and transaction, for
    the rare step only the ORM takes (a lead loaded whole); the unit then ends
    with that session's commit (its flush) and the connection's.
    """

    postgres = True

    def __init__(self, connection: Connection, factory: sessionmaker[Session]) -> None:
        self._connection = connection
        self._factory = factory
        self._session: Session | None = None

    def execute(self, stmt: Any, values: Mapping[str, Any]) -> Rows:
        return execute_together(self._connection, [(stmt, values)])

    def execute_together(self, steps: Sequence[Step]) -> Rows:
        """The steps in order, in one round trip (:func:`execute_together`); the last one's rows."""
        return execute_together(self._connection, steps)

    def orm(self) -> Session:
        if self._session is None:
            _refuse_if_lost(self._connection)
            self._session = self._factory(bind=self._connection)
        return self._session

    def _commit(self) -> None:
        connection = self._connection
        if self._session is not None:
            self._session.commit()  # its flush; the commit too if it used the connection
        _refuse_if_lost(connection)  # SQLAlchemy would reconnect and commit nothing on a fresh one
        if not in_transaction(connection):
            return  # nothing ran, or the session's commit ended the transaction
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        if listeners := connection.dispatch.commit:
            listeners(connection)
        try:
            dbapi.commit()
        except psycopg.Error as error:
            raise translated(connection, error, "COMMIT") from error

    def _close(self) -> None:
        if self._session is not None:
            self._session.close()


class SessionUnit(Unit):
    """A unit of work that is a session's: the same calls, through the session's connection."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"

    def execute(self, stmt: Any, values: Mapping[str, Any]) -> Rows:
        return self.execute_together([(stmt, values)])

    def execute_together(self, steps: Sequence[Step]) -> Rows:
        connection = self.orm().connection()
        if self.postgres:
            return execute_together(connection, steps)
        rows = Rows()
        for stmt, values in steps:  # SQLite: one after another
            built = stmt.build(False) if isinstance(stmt, PerDialect) else stmt
            result = connection.execute(built, dict(values))
            rows = Rows(tuple(row) for row in result) if result.returns_rows else Rows()
            rows.rowcount = result.rowcount
        return rows

    def orm(self) -> Session:
        assert self._session is not None
        return self._session


@contextmanager
def unit(factory: sessionmaker[Session], *, autocommit: bool = False) -> Iterator[Unit]:
    """A unit of work, as :func:`leadrelay.db.transaction` (or, ``autocommit``, :func:`statement_commits`).

    On Postgres, on the thread's kept connection when one is free: psycopg's own
    transaction (or autocommit), no session unless :meth:`Unit.orm` asks for one.
    Otherwise a session's unit.
    """
    engine = factory.kw["bind"]
    with held(engine, autocommit=autocommit) as connection:
        if connection is None:
            units = statement_commits(factory) if autocommit else transaction(factory)
            with units as session:
                yield SessionUnit(session)
            return
        work = Unit(connection, factory)
        try:
            yield work
            if not autocommit:
                work._commit()
        except BaseException:
            _rollback(connection)
            raise
        finally:
            work._close()


def _rollback(connection: Connection) -> None:
    """After a failed unit: end its transaction (a connection that cannot is invalidated, not reused)."""
    if connection.invalidated:
        return
    dbapi = connection.connection.dbapi_connection
    try:
        if dbapi is not None and not dbapi.closed:
            dbapi.rollback()
    except psycopg.Error as error:
        translated(connection, error, "ROLLBACK")


def as_unit(work: Session | Unit) -> Unit:
    """A caller's unit of work: a :class:`Unit` as it is, a session's as a :class:`SessionUnit`."""
    return work if isinstance(work, Unit) else SessionUnit(work)


def session_of(work: Session | Unit) -> Session:
    """The session behind ``work``, for a step only the ORM takes (never one on the hot path)."""
    return work if isinstance(work, Session) else work.orm()
