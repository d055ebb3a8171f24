"""The ledger's prebuilt statements: built once, reused on every call of a hot path.

Why prebuilt (bench/results/PROFILE.md): on the receiver's and the worker's hot
paths, building a SQLAlchemy statement per call and computing its cache key cost
more CPU than the database round trip itself. So the statements those paths run
per lead or per Nexudus request are built here once (per database kind where the
SQL differs), with bound parameters, and only executed by their callers. The
worker's per-lead statements (leases, transitions, attempt rows) are built the
same way with :func:`per_dialect`, beside their one caller in
:mod:`leadrelay.ledger` and ``worker.dedupe``; the ones shared here are:

* intake: :data:`INBOUND_INSERT` and :data:`INBOUND_ID`, run through a SQLAlchemy
  session (SQLite and Postgres) or, in the receiver, as :class:`DriverStatement`
  text on a psycopg async pool — one definition, two ways to execute it;
* the Nexudus budget on Postgres: :data:`RESERVE`, :data:`PACE`,
  :data:`PENALISE`, each one round trip (the SQLite budget decides in Python).

Nothing here executes or commits anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import any_, bindparam, literal_column, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.orm import Session

from leadrelay.models import Lead, LeadState


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class PerDialect:
    """A statement built once per database kind (``build(postgres)``), then reused.

    Called with a session, it gives the statement for that session's database;
    :meth:`build` gives it for a kind directly (the receiver's async path has no session).
    """

    def __init__(self, build: Callable[[bool], Any]) -> None:
        self._build = build
        self._built: dict[bool, Any] = {}

    def build(self, postgres: bool) -> Any:
        stmt = self._built.get(postgres)
        if stmt is None:
            stmt = self._built[postgres] = self._build(postgres)
        return stmt

    def __call__(self, session: Session) -> Any:
        return self.build(is_postgres(session))


def per_dialect(build: Callable[[bool], Any]) -> PerDialect:
    return PerDialect(build)


class Precompiled(PerDialect):
    """A :class:`PerDialect` statement SQLAlchemy cannot cache, compiled once for Postgres.

    SQLAlchemy compiles a statement it cannot key (a multi-row ``VALUES``) on every
    run: ~0.4 ms of a worker's CPU for the dedupe claim (bench/PROFILE.md, fifteenth
    pass). :meth:`execute` runs the SQL compiled once (:class:`DriverStatement`)
    through the session's connection (``exec_driver_sql``: SQLAlchemy's error
    handling, events and invalidation of a dead connection are kept); on another
    database, the statement itself.
    """

    def __init__(self, build: Callable[[bool], Any]) -> None:
        super().__init__(build)
        self._driver: DriverStatement | None = None

    def execute(self, session: Session, values: Mapping[str, Any]) -> Any:
        connection = session.connection()
        if not is_postgres(session):
            return connection.execute(self(session), dict(values))
        driver = self._driver
        if driver is None:
            driver = self._driver = DriverStatement(self.build(True))
        return connection.exec_driver_sql(driver.sql, driver.params(values))


class DriverStatement:
    """A Core statement compiled once for psycopg: the SQL text, and its parameters from values.

    For a caller that holds a bare psycopg connection (the receiver's async pool):
    the same statement the session runs, with the same parameter conversions (the
    column types' bind processors: UTC datetimes, JSON), without SQLAlchemy per call.
    Every parameter comes from the values (constants are written into the SQL).
    """

    def __init__(self, stmt: Any) -> None:
        dialect = PGDialect_psycopg()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves its __init__ unannotated
        compiled = stmt.compile(dialect=dialect)
        if getattr(compiled, "insert_prefetch", None):  # an ORM execution would fill these in
            names = ", ".join(c.name for c in compiled.insert_prefetch)
            raise ValueError(f"give these columns a value in the statement itself: {names}")
        if constants := [name for bind, name in compiled.bind_names.items() if not bind.required]:
            raise ValueError(f"write constants into the SQL (literal_column), not as parameters: {constants}")
        self.sql: str = compiled.string
        self._processors = tuple(
            (name, processor)
            for bind, name in compiled.bind_names.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        )

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        params = dict(values)
        for name, processor in self._processors:
            params[name] = processor(params[name])
        return params


# ---- intake ----------------------------------------------------------------------
# One row per intake key; every column the INSERT sets is given here (no ORM
# defaults), so the session and the bare driver store the very same row.

_LEAD = Lead.__table__.c


def _inbound_values(suffix: str = "") -> dict[str, Any]:
    """The columns of a raw inbound item's row; its parameters' names end in ``suffix``."""
    at = bindparam(f"at{suffix}", type_=_LEAD["received_at"].type)

    def given(column: str, name: str | None = None) -> Any:
        return bindparam(f"{name or column}{suffix}", type_=_LEAD[column].type)

    return {
        "channel": given("channel"),
        "source": given("source"),
        "intake_key": given("intake_key"),
        "received_at": at,
        "content_type": given("content_type"),
        "raw_body": given("raw_body", "body"),
        "raw_sha256": given("raw_sha256", "sha256"),
        "raw_meta": given("raw_meta", "meta"),
        "state": literal_column(f"'{LeadState.received.value}'"),
        "state_changed_at": at,
        "attempts": literal_column("0"),
        "unfinished_runs": literal_column("0"),
        "next_attempt_at": at,
        "enqueued_at": at,
    }


def _inbound_insert(postgres: bool) -> Any:
    """Store a raw inbound item unless its intake key is known; RETURNING the new id (none: known)."""
    insert = postgresql.insert if postgres else sqlite.insert
    return (
        insert(Lead)
        .values(**_inbound_values())
        .on_conflict_do_nothing(index_elements=["intake_key"])
        .returning(Lead.id)
    )


def inbound_insert_rows(count: int) -> Any:
    """Postgres: ``count`` items in one INSERT (row n's parameters end in ``_n``); each new id with its key.

    One statement: its rows commit together or not at all. A key that two of its
    rows carry is stored from the first (``DO NOTHING`` skips the second).
    """
    rows = [_inbound_values(f"_{n}") for n in range(count)]
    return (
        postgresql.insert(Lead)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["intake_key"])
        .returning(Lead.id, Lead.intake_key)
    )


INBOUND_INSERT = per_dialect(_inbound_insert)
# the same, for many items in one statement (the inbox's batch on SQLite): each new row's id with its key
INBOUND_INSERT_KEYED = per_dialect(lambda postgres: _inbound_insert(postgres).returning(Lead.intake_key))
# Postgres: many items of one channel, source and content type in one statement whose
# text is the same for any number of rows (the inbox's batch): the rows come as
# arrays, so neither SQLAlchemy nor psycopg compiles or parses it again per batch
# size, as they do a multi-row VALUES; the arrays go in binary (``%b``: the bodies
# are not escaped). SQL for ``exec_driver_sql`` (bench/PROFILE.md, seventeenth
# pass). Rows are inserted in the arrays' order; each new row's id with its key.
INBOUND_INSERT_ARRAYS = """
INSERT INTO leads (channel, source, intake_key, received_at, content_type, raw_body, raw_sha256,
    raw_meta, state, state_changed_at, attempts, unfinished_runs, next_attempt_at, enqueued_at)
SELECT %(channel)b, %(source)b, item.intake_key, %(at)b, %(content_type)b, item.body, item.sha256,
    CAST(item.meta AS jsonb), 'received', %(at)b, 0, 0, %(at)b, %(at)b
FROM unnest(%(keys)b, %(bodies)b, %(sha256s)b, %(metas)b)
    WITH ORDINALITY AS item(intake_key, body, sha256, meta, n)
ORDER BY item.n
ON CONFLICT (intake_key) DO NOTHING
RETURNING id, intake_key
"""
INBOUND_ID = select(Lead.id).where(Lead.intake_key == bindparam("intake_key", type_=_LEAD["intake_key"].type))
# Postgres: the rows holding any of these keys, with their keys (a batch's redeliveries, one round trip)
_ANY_KEY = Lead.intake_key == any_(bindparam("keys", type_=postgresql.ARRAY(_LEAD["intake_key"].type)))
INBOUND_IDS = select(Lead.id, Lead.intake_key).where(_ANY_KEY)
# the rows holding any of these keys, with the body digest their ``raw_meta`` keeps
# (Postgres: one array parameter, the same text for any number of keys)
INBOUND_HOLDERS = per_dialect(
    lambda postgres: select(Lead.id, Lead.intake_key, Lead.raw_meta["body_sha256"].as_string()).where(
        _ANY_KEY if postgres else Lead.intake_key.in_(bindparam("keys", expanding=True))
    )
)


# ---- the Nexudus budget on Postgres ------------------------------------------------
# One round trip per reservation: lock the account row, read the database clock and
# the hour's and day's usage, decide, move the row on and count the request.
#
# The UPDATE waits for the account's row lock and then computes its SET list from
# the row's latest committed version (READ COMMITTED re-check), so the spacing
# (next_request_at, next_write_at, blocked_until) is exact, as with SELECT … FOR
# UPDATE. The usage sums, though, come from the statement's snapshot, taken
# before the lock wait: they can miss the reservations committed while this one
# waited. Each of those moved ``updated_at``, so the statement knows: it reserves
# when the snapshot's ``updated_at`` is still the locked row's (nothing missed),
# or when the sums are ``:slack`` requests or more below every cap (more than
# the lock queue can hold: every waiter is one open connection); otherwise it
# reserves nothing and says it was not ``fresh``. Run again after the caller
# locked the row itself (its snapshot then comes after the lock), it is always fresh.
RESERVE = text(
    """
WITH clock AS (
    SELECT extract(epoch FROM clock_timestamp())::float8 AS now
), usage AS (
    SELECT
        coalesce(sum(u.requests) FILTER (WHERE u.minute > floor(c.now / :minute) - 60), 0) AS hour_requests,
        coalesce(sum(u.requests), 0) AS day_requests,
        coalesce(sum(u.writes), 0) AS day_writes,
        min(u.minute) FILTER (WHERE u.minute > floor(c.now / :minute) - 60) AS oldest_hour,
        min(u.minute) AS oldest_day
    FROM clock c
    LEFT JOIN nexudus_usage u ON u.account = :account AND u.minute > floor(c.now / :minute) - 1440
), seen AS (
    SELECT updated_at AS seen_at FROM nexudus_accounts WHERE account = :account
), decision AS (
    SELECT
        c.now,
        GREATEST(
            c.now,
            CASE WHEN u.hour_requests + 1 > :per_hour AND u.oldest_hour IS NOT NULL
                 THEN (u.oldest_hour + 61) * :minute END,
            CASE WHEN (u.day_requests + 1 > :per_day OR (:write AND u.day_writes + 1 > :writes_per_day))
                      AND u.oldest_day IS NOT NULL
                 THEN (u.oldest_day + 1441) * :minute END
        ) AS cap_until,
        (u.hour_requests + :slack <= :per_hour AND u.day_requests + :slack <= :per_day
         AND (NOT :write OR u.day_writes + :slack <= :writes_per_day)) AS far,
        s.seen_at
    FROM clock c, usage u, seen s
), moved AS (
    UPDATE nexudus_accounts a
    SET next_request_at = CASE WHEN r.ok THEN GREATEST(r.due, r.start) + :request_gap
                               ELSE a.next_request_at END,
        next_write_at = CASE WHEN r.ok AND :write THEN r.start + :write_gap ELSE a.next_write_at END,
        updated_at = CASE WHEN r.ok THEN clock_timestamp() ELSE a.updated_at END
    FROM (
        SELECT a2.account, d.now, t.start, a2.next_request_at AS due,
               (d.far OR a2.updated_at IS NOT DISTINCT FROM d.seen_at) AS fresh,
               (d.far OR a2.updated_at IS NOT DISTINCT FROM d.seen_at) AND t.start - d.now <= :max_wait AS ok
        FROM nexudus_accounts a2, decision d,
        LATERAL (SELECT GREATEST(d.now, a2.next_request_at - :request_burst, a2.blocked_until, d.cap_until,
                                 CASE WHEN :write THEN a2.next_write_at END) AS start) t
        WHERE a2.account = :account
        FOR UPDATE OF a2
    ) r
    WHERE a.account = r.account
    RETURNING r.now, r.start, r.fresh, r.ok
), counted AS (
    INSERT INTO nexudus_usage AS nu (account, minute, requests, writes)
    SELECT :account, floor(m.start / :minute)::bigint, 1, CASE WHEN :write THEN 1 ELSE 0 END
    FROM moved m WHERE m.ok
    ON CONFLICT (account, minute) DO UPDATE
    SET requests = nu.requests + 1, writes = nu.writes + excluded.writes
)
SELECT now, start, fresh, ok FROM moved
"""
)

# A send happening now, held the minimum gap after the previous one (waits for the row lock).
PACE = text(
    """
UPDATE nexudus_accounts
SET last_sent_at = GREATEST(extract(epoch FROM clock_timestamp())::float8, last_sent_at + :gap)
WHERE account = :account
RETURNING last_sent_at, extract(epoch FROM clock_timestamp())::float8
"""
)

# Nexudus said wait (Retry-After): nobody sends for the account until then.
PENALISE = text(
    """
UPDATE nexudus_accounts
SET blocked_until = GREATEST(blocked_until, extract(epoch FROM clock_timestamp())::float8 + :seconds)
WHERE account = :account
RETURNING account
"""
)
