"""The delivery floor: a plain loop, per lead the same three Nexudus calls and three ledger commits.

No Celery, no ORM, no budget, no retries, no dedupe, no logging: claim a received
lead (``FOR UPDATE SKIP LOCKED``, lease set, committed), search the customer by
e-mail, create the customer, record the attempt (committed before the create, as
leadrelay does), create the opportunity, settle (state, ids, ``delivered_at``,
the attempt's outcome; committed). psycopg + httpx against the same sandbox.

``python -m bench.floor_delivery DSN BASE_URL USERNAME PASSWORD PREFIX`` runs one
such loop until no lead whose intake key starts with PREFIX is left to claim;
the bench starts as many processes as leadrelay's worker has, and reads their CPU
before it stops them, as it does the worker's.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

CLAIM = (
    "UPDATE leads SET state = 'delivering', lease_owner = %(owner)s, lease_until = now() + interval '5 min',"
    " attempts = attempts + 1 WHERE id = (SELECT id FROM leads WHERE state = 'received'"
    " AND intake_key LIKE %(prefix)s ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, raw_body"
)
ATTEMPT = (
    "INSERT INTO delivery_attempts (lead_id, started_at, call)"
    " VALUES (%s, now(), 'create_opportunity') RETURNING id"
)
SETTLE_LEAD = (
    "UPDATE leads SET state = 'delivered', coworker_id = %s, opportunity_id = %s, delivered_at = now(),"
    " state_changed_at = now(), lease_owner = NULL, lease_until = NULL WHERE id = %s"
)
SETTLE_ATTEMPT = (
    "UPDATE delivery_attempts SET finished_at = now(), status_code = 200, outcome = 'ok' WHERE id = %s"
)
# the ids of the routing's default location (foundry), as leadrelay sends them
LOCATION = {"business": 1001, "column": 2001, "country": 1, "timezone": 52}


def deliver(db: psycopg.Connection, http: httpx.Client, lead_id: int, lead: dict) -> None:
    contact = lead["contact"]
    found = http.get(
        "/api/spaces/coworkers", params={"Coworker_Email": contact["email"], "page": 1, "size": 25}
    )
    found.raise_for_status()
    records = found.json().get("Records") or []
    coworker = records[0]["Id"] if records else None
    if coworker is None:
        created = http.post(
            "/api/spaces/coworkers",
            json={
                "FullName": contact["full_name"],
                "Email": contact["email"],
                "CountryId": LOCATION["country"],
                "SimpleTimeZoneId": LOCATION["timezone"],
                "InvoicingBusinessId": LOCATION["business"],
                "Businesses": [LOCATION["business"]],
                "CoworkerType": 1,
                "CreateUser": False,
                "MobilePhone": contact.get("phone"),
                "CompanyName": contact.get("company"),
            },
        )
        created.raise_for_status()
        coworker = created.json()["Value"]["Id"]
    with db.transaction():
        attempt = db.execute(ATTEMPT, (lead_id,)).fetchone()[0]  # type: ignore[index]
    opportunity = http.post(
        "/api/crm/crmopportunities",
        json={
            "Name": f"Canonical {lead['external_id']}",
            "SystemId": f"leadrelay-{lead_id}",
            "CrmBoardColumnId": LOCATION["column"],
            "CoworkerId": coworker,
            "Status": 1,
            "Position": 1,
            "LeadSource": 5,
            "Notes": str(lead.get("message", "")),
            "DueDate": (datetime.now(UTC) + timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    opportunity.raise_for_status()
    with db.transaction():
        db.execute(SETTLE_LEAD, (coworker, opportunity.json()["Value"]["Id"], lead_id))
        db.execute(SETTLE_ATTEMPT, (attempt,))


def main() -> None:
    dsn, base_url, username, password, prefix = sys.argv[1:6]
    owner = f"floor-{os.getpid()}"
    with psycopg.connect(dsn, autocommit=True) as db, httpx.Client(base_url=base_url, timeout=30) as http:
        token = http.post(
            "/api/token", data={"grant_type": "password", "username": username, "password": password}
        )
        token.raise_for_status()
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        delivered = 0
        while True:
            with db.transaction():
                row = db.execute(CLAIM, {"owner": owner, "prefix": f"{prefix}%"}).fetchone()
            if row is None:
                break
            deliver(db, http, row[0], json.loads(row[1]))
            delivered += 1
        print(f"{owner}: {delivered} leads delivered", flush=True)
        # stay, connected, until the bench has read the CPU used (its backend's too: the
        # bench counts only backends alive at the end); SIGTERM ends it
        signal.pause()


if __name__ == "__main__":
    main()
