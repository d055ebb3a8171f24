"""The dispatch after every delivery reads the account's live leads, not every lead it ever had (Postgres).

It asks for the account's waiting leads and counts those in flight. Both conditions
were an OR over two states, which is no index condition: an index scan's condition was
the account alone, and each dispatch read all of the account's delivered history (in
the pipeline bench, 0.69 ms a call inside Postgres after a 2,500-lead run, growing with
the ledger: bench/PROFILE.md, nineteenth pass). Now each state is asked apart (a UNION,
a count each) and written into the SQL, so it is an index condition.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from leadrelay.db import utcnow
from leadrelay.driver import compiled
from leadrelay.ledger.leases import _CLAIMS
from leadrelay.runtime import Runtime
from leadrelay.statements import _PSYCOPG
from leadrelay.worker.dispatch import _DUE_GATED, _clock_params, accounts_waiting
from leadrelay.worker.sweeper import stale_received_query
from tests.delivery.plans import dropped
from tests.helpers import canonical, ingest

HISTORY = 400
# the account's delivered history, written as a long-running account's ledger holds it
SEED = text(
    """
INSERT INTO leads (channel, source, intake_key, received_at, raw_body, raw_sha256, raw_meta, state,
                   state_changed_at, attempts, unfinished_runs, account, next_attempt_at)
SELECT 'canonical', 'webhook', 'history:' || g, now(), '\\x7b7d'::bytea, repeat('0', 64), '{}', 'delivered',
       now(), 1, 0, 'main', now()
FROM generate_series(1, :n) AS g
"""
)


def _dropped(runtime: Runtime, sql: str, params: dict[str, Any]) -> int:
    """Rows the statement's plan reads and drops, over a ledger with the account's history in it."""
    ingest(runtime, canonical())  # one lead that is not the account's history
    return dropped(runtime, (SEED, {"n": HISTORY}), sql, params)


def test_the_dispatch_reads_the_accounts_live_leads_not_its_history(runtime: Runtime) -> None:
    statement = compiled(_DUE_GATED.build(True))
    values = {**_clock_params(timedelta(seconds=10)), "_account": "main", "_capacity": 2}
    # was the history twice over: the query and its count
    assert _dropped(runtime, statement.sql, statement.params(values)) < 10


def test_the_sweepers_question_reads_the_waiting_leads_not_the_history(runtime: Runtime) -> None:
    stmt = accounts_waiting(utcnow(), timedelta(seconds=10)).compile(dialect=_PSYCOPG)
    assert _dropped(runtime, str(stmt), dict(stmt.params)) < 10


def test_what_reads_by_state_on_every_pass_writes_the_state_in() -> None:
    """A prepared statement's generic plan does not know a bound state: it read every lead.

    Measured with 100,000 delivered leads in the account, generic plans: the dispatch's
    query 30 ms, the gated claim 17.7 ms, the sweeper's stale received leads 17.4 ms;
    with the states written in, 0.14, 1.05 and 0.36 ms (bench/PROFILE.md, nineteenth pass).
    """
    now, grace = utcnow(), timedelta(seconds=10)
    statements = {
        "the dispatch": compiled(_DUE_GATED.build(True)).sql,
        "the gated claim": compiled(_CLAIMS[(True, True, False)].build(True)).sql,
        "the gated claim that decides": compiled(_CLAIMS[(True, True, True)].build(True)).sql,
        "the sweeper's accounts": str(accounts_waiting(now, grace).compile(dialect=_PSYCOPG)),
        "the sweeper's received": str(stale_received_query(now, grace, 10).compile(dialect=_PSYCOPG)),
    }
    for name, sql in statements.items():
        # the claim's own lead is found by its id: only its count of the account's leads matters
        counted = sql[sql.index("count(*)") :] if name.startswith("the gated claim") else sql
        assert "leads.state = '" in counted, name
        assert "leads.state = %(" not in counted, name
