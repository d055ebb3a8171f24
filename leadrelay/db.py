"""Engines and sessions for the ledger, on Postgres or (embedded) SQLite.

The caller — a request handler or a task — owns the transaction: services take a
``Session`` and never commit.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import JSON, BigInteger, Connection, DateTime, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The ledger unreachable (Postgres restarting, the connection lost), not a statement gone wrong:
# worth trying again later, and nothing to record against the lead being run.
LEDGER_UNREACHABLE = (OperationalError, InterfaceError)
CONNECT_TIMEOUT = 10  # seconds

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only
Json = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use leadrelay.db.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is turned off so that every transaction
    # can start with BEGIN IMMEDIATE (below): a deferred transaction that later
    # writes can fail with SQLITE_BUSY at once instead of waiting busy_timeout.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, pool_size: int = 5, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,  # bound values are personal data: never in an exception's text
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(
        url,
        echo=echo,
        hide_parameters=True,  # bound values are personal data: never in an exception's text
        # a host that drops packets fails a connection in 10 s, not libpq's 130 (a URL's own wins)
        connect_args={} if "connect_timeout" in make_url(url).query else {"connect_timeout": CONNECT_TIMEOUT},
        pool_pre_ping=True,  # a restarted Postgres leaves dead pooled connections behind
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=1800,
    )
    engine.dialect.do_ping = _quiet_socket_ping(engine.dialect.do_ping)  # type: ignore[method-assign]
    return engine


def _quiet_socket_ping(ping: Any) -> Any:
    """Pre-ping without a round trip while the pooled connection's socket is quiet.

    An idle connection in the pool has nothing to read. A server that restarted,
    or ended the session, has sent its goodbye (an error message, then EOF), so
    the socket is readable: only then is the real ping (``SELECT 1``) sent, and
    a dead connection is replaced exactly as before. A pre-ping was a tenth of the
    worker's CPU per lead (one round trip per transaction).
    """

    def do_ping(dbapi_connection: Any) -> bool:
        try:
            if dbapi_connection.closed:
                return ping(dbapi_connection)  # type: ignore[no-any-return]
            poller = select.poll()
            poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
            if not poller.poll(0):
                return True
        except (OSError, ValueError, AttributeError):
            pass
        return ping(dbapi_connection)  # type: ignore[no-any-return]

    return do_ping


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


_FLUSHED = "SET LOCAL synchronous_commit TO ON"


def flush_at_commit(session: Session) -> None:
    """In a unit a statement made unflushed (``UNFLUSHED_CLAUSE``): its commit waits for the disk after all.

    For a unit that found, once running, that something outside the ledger will act
    on it right after its commit (Postgres; elsewhere every commit waits anyway).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql(_FLUSHED)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception.

    A unit whose commit need not wait for the disk says so in one of its statements
    (:data:`leadrelay.statements.UNFLUSHED_CLAUSE`; docs/guarantees.md, "Commits that
    do not wait for the disk").
    """
    engine = factory.kw["bind"]
    with held(engine, autocommit=False) as conn:
        session = factory() if conn is None else factory(bind=conn)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


@contextmanager
def statement_commits(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Each statement commits on its own: for a unit of work of one statement.

    On Postgres the session runs on an AUTOCOMMIT connection, so a single INSERT is
    one round trip, as durable as BEGIN, INSERT, COMMIT (three). Elsewhere it is
    :func:`transaction`.
    """
    engine = factory.kw["bind"]
    if engine.dialect.name != "postgresql":
        with transaction(factory) as session:
            yield session
        return
    with ExitStack() as stack:
        conn = stack.enter_context(held(engine, autocommit=True))
        if conn is None:
            conn = stack.enter_context(_connect(engine, autocommit=True))
        yield stack.enter_context(factory(bind=conn))


class _Kept:
    """The connections one thread keeps for the units of work of a task's leads (:func:`kept_connections`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connections: dict[bool, Connection] = {}  # by autocommit
        self.in_use: set[bool] = set()

    def drop(self, autocommit: bool) -> None:
        connection = self.connections.pop(autocommit, None)
        if connection is not None:
            connection.close()  # back to the pool, which discards it if it was invalidated

    def close(self) -> None:
        for autocommit in (False, True):
            self.drop(autocommit)


_kept = threading.local()


@contextmanager
def kept_connections(factory: sessionmaker[Session]) -> Iterator[None]:
    """Within the block, this thread's units of work on Postgres reuse two pooled connections.

    A lead runs a dozen units of work (:func:`transaction`, :func:`statement_commits`),
    each of which would otherwise check a connection out of the pool and back in
    (pre-ping, reset, and for an autocommit unit its isolation level set and reset):
    here one connection serves the transactions and one the autocommit units, each
    unit as before (its own session or, :mod:`leadrelay.driver`, its own statements
    on psycopg; its own commit). A unit that starts while the
    same kind is already open (nested) takes its own from the pool, as without the
    block; a unit that fails, or leaves its connection in a transaction (SQLAlchemy's
    or psycopg's own), gives it back. A kept connection is pinged before each reuse as the pool pings at a
    checkout (a poll of its quiet socket), since it may have sat idle through a
    Nexudus call while Postgres restarted. Both go back to the pool when the block ends:
    a lead's run (``pipeline.process``) opens one, and a task opens one around all the
    leads of its message (``worker.tasks``). Elsewhere than on Postgres, and inside an
    outer block, it changes nothing.
    """
    engine = factory.kw["bind"]
    if engine.dialect.name != "postgresql" or getattr(_kept, "current", None) is not None:
        yield
        return
    kept = _kept.current = _Kept(engine)
    try:
        yield
    finally:
        _kept.current = None
        kept.close()


@contextmanager
def held(engine: Engine, *, autocommit: bool) -> Iterator[Connection | None]:
    """This thread's kept connection of that kind, if one is kept for the engine and free; else None."""
    kept: _Kept | None = getattr(_kept, "current", None)
    if kept is None or kept.engine is not engine or autocommit in kept.in_use:
        yield None
        return
    connection = kept.connections.get(autocommit)
    if connection is not None and not _alive(engine, connection):
        kept.drop(autocommit)  # idle through a Nexudus call: Postgres may have ended it meanwhile
        connection = None
    if connection is None:
        connection = kept.connections[autocommit] = _connect(engine, autocommit=autocommit)
    kept.in_use.add(autocommit)
    try:
        yield connection
    except BaseException:
        kept.drop(autocommit)
        raise
    else:
        if connection.invalidated or connection.in_transaction() or in_transaction(connection):
            kept.drop(autocommit)  # not as a unit leaves it: not reused
    finally:
        kept.in_use.discard(autocommit)


def in_transaction(connection: Connection) -> bool:
    """psycopg's own view: a transaction open (or failed) on the connection, whatever SQLAlchemy knows.

    A unit of work on the driver (:mod:`leadrelay.driver`) runs psycopg's transaction
    under a connection that SQLAlchemy sees as idle.
    """
    dbapi = connection.connection.dbapi_connection
    return dbapi is not None and dbapi.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


def _connect(engine: Engine, *, autocommit: bool) -> Connection:
    """A pooled connection; in AUTOCOMMIT (each statement commits) for a one-statement unit."""
    connection = engine.connect()
    return connection.execution_options(isolation_level="AUTOCOMMIT") if autocommit else connection


def _alive(engine: Engine, connection: Connection) -> bool:
    """The pool's pre-ping, for a kept connection (a poll of its quiet socket: :func:`_quiet_socket_ping`)."""
    if connection.invalidated or connection.closed:
        return False
    try:
        dbapi = connection.connection.dbapi_connection
        return dbapi is not None and bool(engine.dialect.do_ping(dbapi))
    except Exception:  # a dead connection: the next unit takes a fresh one
        return False


def insert_for(session: Session, table: Any) -> Any:
    """A dialect INSERT that supports ``on_conflict_do_nothing``."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect {name!r}; use PostgreSQL or SQLite")
