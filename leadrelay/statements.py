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
  :data:`PENALISE`, each one round trip (the SQLite budget decides in Python);
* :data:`UNFLUSHED_CLAUSE`: a statement whose commit does not wait for the disk;
* :func:`checked`: a statement's guards, checked on the rows its key found.

Nothing here executes or commits anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, any_, bindparam, literal_column, select, text, true
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


Processor = Callable[[Any], Any]
_PSYCOPG = PGDialect_psycopg()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves its __init__ unannotated


class DriverStatement:
    """A Core statement compiled once for psycopg: the SQL, its parameters from values, its rows.

    For a caller on a bare psycopg connection (the receiver's async pool, the
    worker's units of work in :mod:`leadrelay.driver`): the same statement a session
    runs, with the same conversions — the column types' bind processors (UTC
    datetimes, JSON) and result processors — and its constants (an IN of fixed
    values expanded once, as SQLAlchemy expands it on every execution), without
    SQLAlchemy per call. A parameter that SQLAlchemy would fill in or expand per
    call (a Python-side column default, an IN of bound values) is refused here.
    """

    def __init__(self, stmt: Any) -> None:
        compiled = stmt.compile(dialect=_PSYCOPG)
        prefetch = [*getattr(compiled, "insert_prefetch", ()), *getattr(compiled, "update_prefetch", ())]
        if prefetch:  # an ORM execution would fill these in
            raise ValueError(
                f"give these columns a value in the statement itself: {[c.name for c in prefetch]}"
            )
        if compiled.literal_execute_params or any(b.required for b in compiled.post_compile_params):
            raise ValueError("an IN of bound values is compiled per call: use = ANY(:array) instead")
        if compiled.escaped_bind_names:
            raise ValueError(f"name these parameters plainly: {sorted(compiled.escaped_bind_names)}")
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        self.sql: str = compiled.string
        self._defaults = {name: bind.value for name, bind in binds.items() if not bind.required}
        self._processors: tuple[tuple[str, Processor], ...] = tuple(
            (name, processor)
            for name, bind in binds.items()
            if (processor := bind.type.dialect_impl(_PSYCOPG).bind_processor(_PSYCOPG)) is not None
        )
        if compiled.post_compile_params:  # an IN of constants: expanded once, here
            values = compiled.construct_params(_check=False, escape_names=False, _no_postcompile=True)
            expanded = compiled._process_parameters_for_postcompile(values)
            self.sql = expanded.statement
            self._defaults = {
                name: value
                for name, value in expanded.parameters.items()
                if name not in binds or not binds[name].required
            }
            self._processors += tuple(
                (name, processor) for name, processor in expanded.processors.items() if name not in binds
            )
        self._results: tuple[tuple[int, Processor], ...] = tuple(
            (index, processor)
            for index, column in enumerate(compiled._result_columns)
            if (processor := column[3].dialect_impl(_PSYCOPG).result_processor(_PSYCOPG, None)) is not None
        )

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        params = {**self._defaults, **values} if self._defaults else dict(values)
        for name, processor in self._processors:
            if name in params:
                params[name] = processor(params[name])
        return params

    def rows(self, fetched: Sequence[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
        """The rows psycopg fetched, converted as SQLAlchemy converts them (enums, UTC datetimes)."""
        if not self._results or not fetched:
            return fetched
        converted = []
        for row in fetched:
            values = list(row)
            for index, processor in self._results:
                values[index] = processor(values[index])
            converted.append(tuple(values))
        return converted


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


# ---- a commit that does not wait for the disk ---------------------------------------
# Postgres: ``set_config(…, true)`` run by the statement itself sets synchronous_commit for
# the statement's own transaction — on an autocommit connection, its implicit one — so a
# unit of one statement commits without waiting for its WAL flush, at no extra round trip
# (``SET LOCAL`` is a statement of its own, and needs a transaction). It is evaluated
# for every row the statement writes or locks (a filter beside the others; Postgres may
# also evaluate it for a row it then does not take); a statement that finds no row leaves
# its transaction waiting for the disk, as before. In a transaction it makes the whole
# transaction's commit unflushed: docs/guarantees.md ("Commits that do not wait for
# the disk") says where that is allowed.
UNFLUSHED_CLAUSE = "set_config('synchronous_commit', 'off', true) IS NOT NULL"


def checked(*conditions: Any) -> Any:
    """Conditions checked on the rows a statement's key found, never a way to find them.

    ``(…) IS true``: the same rows (a WHERE drops NULL as it drops false), and no index
    serves it, so the statement is planned on its key alone. With a fresh ledger's
    statistics (none yet) or stale ones (a backlog's states and accounts, written since
    the last ANALYZE), the planner saw an index on a guard's column as cheap as the
    key, and read every received lead, or every lead of the account, to find one
    (bench/PROFILE.md, twenty-ninth pass; ``tests/delivery/test_found_by_key.py``).
    """
    return and_(*conditions).is_(true())


def unflushed(stmt: Any) -> Any:
    """A Core UPDATE (or SELECT … FOR UPDATE) whose commit, if it takes a row, does not wait for the disk."""
    return stmt.where(text(UNFLUSHED_CLAUSE))


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
#
# The budget's three statements commit without waiting for the disk (UNFLUSHED_CLAUSE,
# written out: tests/delivery/test_unflushed.py checks each has it), for every request
# of every process. A crash of Postgres itself may forget the last few reservations,
# sends and penalties: a few requests more than counted, or sent before a Retry-After
# ran out — inside the limits' safety margin, and a 409 is a throttle the client waits
# out (and penalises again). A delivery's write is on record before it is sent all the
# same: its attempt statement is flushed, and the WAL is flushed in order.
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
SELECT now, start, fresh, ok FROM moved WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
"""
)

# A send happening now, held the minimum gap after the previous one (waits for the row lock).
PACE = text(
    """
UPDATE nexudus_accounts
SET last_sent_at = GREATEST(extract(epoch FROM clock_timestamp())::float8, last_sent_at + :gap)
WHERE account = :account AND set_config('synchronous_commit', 'off', true) IS NOT NULL
RETURNING last_sent_at, extract(epoch FROM clock_timestamp())::float8
"""
)

# Nexudus said wait (Retry-After): nobody sends for the account until then.
PENALISE = text(
    """
UPDATE nexudus_accounts
SET blocked_until = GREATEST(blocked_until, extract(epoch FROM clock_timestamp())::float8 + :seconds)
WHERE account = :account AND set_config('synchronous_commit', 'off', true) IS NOT NULL
RETURNING account
"""
)
