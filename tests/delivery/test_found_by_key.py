"""What finds one lead by its id, or a person's leads by their identity, reads those alone (Postgres).

With a fresh ledger's statistics (none yet) or stale ones (a backlog's states and
accounts, written after the last ANALYZE), the planner saw another index on a guard's
column as cheap as the key: the reading's lease read every received lead to find its
own, the claim every lead of the account, and the claim's first introduction every
lead at the location (the pipeline bench: 1,499 rows read and dropped a statement
over a backlog of 1,500, about 0.8 ms a claim, held under the account's row lock:
bench/PROFILE.md, twenty-ninth pass). The guards are now checked on the rows the key
found (``statements.checked``), never a way to find them.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from leadrelay.db import transaction, utcnow
from leadrelay.driver import compiled
from leadrelay.ledger.dbclock import clock_params
from leadrelay.ledger.introduced import Person
from leadrelay.ledger.leases import _reading_statement, claiming
from leadrelay.runtime import Runtime
from tests.delivery.plans import dropped
from tests.helpers import canonical, ingest

OTHERS = 400
# other leads sharing what the guards look at: received ones (the reading), the account's
# and the location's delivered ones (the claim and its first introduction)
SEED = text(
    """
INSERT INTO leads (channel, source, intake_key, received_at, raw_body, raw_sha256, raw_meta, state,
                   state_changed_at, attempts, unfinished_runs, account, next_attempt_at, identity, location)
SELECT 'canonical', 'webhook', 'others:' || g, now(), '\\x7b7d'::bytea, repeat('0', 64), '{}', :state,
       now(), 1, 0, :account, now(), 'someone-' || g, 'loc-1'
FROM generate_series(1, :n) AS g
"""
)


def test_the_readings_lease_reads_its_lead_alone(runtime: Runtime) -> None:
    lead_id = ingest(runtime, canonical())
    seed = (SEED, {"n": OTHERS, "state": "received", "account": None})
    statement = compiled(_reading_statement.build(True))
    params = {"_id": lead_id, "_owner": "w1", **clock_params(60)}
    assert dropped(runtime, seed, statement.sql, statement.params(params)) < 10


def test_the_claim_reads_its_lead_and_the_persons_alone(runtime: Runtime) -> None:
    lead_id = ingest(runtime, canonical())
    with transaction(runtime.sessions) as session:
        session.execute(
            text(
                "UPDATE leads SET state = 'normalised', account = 'main', identity = 'me',"
                " location = 'loc-1', next_attempt_at = now() - interval '1 second' WHERE id = :id"
            ),
            {"id": lead_id},
        )
    seed = (SEED, {"n": OTHERS, "state": "delivered", "account": "main"})
    person = Person("me", "loc-1", utcnow() - timedelta(days=30))
    stmt, params = claiming(
        lead_id, owner="w1", lease_seconds=60, account="main", room=("main", 2), person=person
    )
    statement = compiled(stmt.build(True))
    assert dropped(runtime, seed, statement.sql, statement.params(params)) < 10
