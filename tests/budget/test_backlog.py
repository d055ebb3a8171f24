"""A backlog against the documented Nexudus limits, with three real worker processes.

The sandbox enforces the limits on a clock ``SPEED`` times faster (so a "minute"
lasts 60/SPEED seconds) and the routing file tells leadrelay the same. Measured:
409/429 answers received (must be zero), requests per lead, and whether another
account's leads wait behind the backlog. The share of the 60 writes/min ceiling
used is printed here and measured properly by the budget bench (``python -m bench``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from leadrelay.children import Child
from leadrelay.db import make_engine, make_session_factory
from leadrelay.models import Lead, LeadState
from leadrelay.testing.ledger import record_canonical
from leadrelay.testing.processes import RemoteSandbox, service_env
from leadrelay.worker.queue import enqueue
from tests.helpers import canonical, wait_for

# ×5, not faster: the documented 100 ms between any two requests becomes 20 ms, which the
# sandbox can time. At ×10 it became 10 ms, about one time slice of a loaded two-core machine:
# a sandbox descheduled for that long stamps two requests sent 20 ms apart back to back and
# answers the second 409 (seen in 3 of 7 runs on one day, with the code before and after a change).
# Sends are now held the interval plus 50 ms of real time apart on a sped-up clock (70 ms here,
# not 40: budget.SEND_SLIP): slips of 14 to 38 ms were seen at ×5 too, the one of 32 ms a 409
SPEED = 5.0
BACKLOG = 200  # 400 writes: under seven sandbox minutes, 80 s
SECOND = ("second@leadrelay.local", "second-password")


@pytest.fixture
def limited_sandbox(tmp_path: Path) -> Iterator[RemoteSandbox]:
    sandbox = RemoteSandbox(tmp_path, speed=SPEED, limits=True)
    sandbox.add_tenant(*SECOND)
    yield sandbox
    sandbox.stop()


def routing_file(tmp_path: Path) -> Path:
    limits = {"clock_speed": SPEED}
    location = {
        "business_id": 1001,
        "board_column_id": 2001,
        "country": "GB",
        "country_id": 1,
        "timezone_id": 52,
    }
    data = {
        "accounts": {
            "main": {"limits": limits},
            "second": {"username": SECOND[0], "password": SECOND[1], "limits": limits},
        },
        "locations": {
            "foundry": {**location, "account": "main", "listings": {"canonical": ["foundry"]}},
            "annex": {**location, "account": "second", "listings": {"canonical": ["annex"]}},
        },
        "channels": {"canonical": {"lead_source": 11, "agent_id": 3004}},
        "defaults": {"location": "foundry"},
    }
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def ingest_and_enqueue(url: str, bodies: list[dict]) -> list[int]:
    ids = record_canonical(url, bodies)
    enqueue(ids)
    return ids


def person(n: int, listing: str) -> dict:
    return canonical(
        external_id=f"{listing}-{n:04}",
        contact={"full_name": f"Person {n}", "email": f"p{n}@{listing}.example"},
        listing={"id": listing},
    )


def delivered_at(url: str, ids: list[int]) -> dict[int, object]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(select(Lead.id, Lead.delivered_at).where(Lead.id.in_(ids))).all()
    finally:
        engine.dispose()
    return {lead_id: at for lead_id, at in rows if at is not None}


def undelivered(url: str, ids: list[int]) -> int:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return session.execute(
                select(func.count()).where(Lead.id.in_(ids), Lead.state != LeadState.delivered)
            ).scalar_one()
    finally:
        engine.dispose()


def throttled_context(log: list[dict]) -> str:
    """The calls around each throttled one: which window was crossed, and by whom."""
    lines = []
    for index, entry in enumerate(log):
        if entry["status"] in (409, 429):
            first = log[max(0, index - 8)]["at"]
            for near in log[max(0, index - 8) : index + 2]:
                when = near["at"] - first
                lines.append(f"{when:8.3f} {near['tenant']} {near['method']} {near['path']} {near['status']}")
            lines.append("")
    return "\n".join(lines)


def test_a_backlog_paces_itself_and_does_not_hold_up_another_account(
    clean_db, redis_broker, limited_sandbox, tmp_path: Path
) -> None:
    sandbox = limited_sandbox
    env = service_env(
        LEADRELAY_CONFIG=str(routing_file(tmp_path)),
        NEXUDUS_BASE_URL=sandbox.base_url,
        NEXUDUS_USERNAME="sandbox@leadrelay.local",
        NEXUDUS_PASSWORD="sandbox",
        LEADRELAY_DATA_DIR=str(tmp_path),
    )
    backlog = ingest_and_enqueue(clean_db, [person(n, "foundry") for n in range(BACKLOG)])
    procs = [
        Child(f"worker{n}", ["worker", "--concurrency", "1"], env=env, logdir=tmp_path) for n in range(3)
    ]
    procs.append(Child("beat", ["beat"], env=env, logdir=tmp_path))
    try:
        wait_for(lambda: len(delivered_at(clean_db, backlog)) >= 30, timeout=120, what="the backlog to start")
        others = ingest_and_enqueue(clean_db, [person(n, "annex") for n in range(5)])
        wait_for(
            lambda: len(delivered_at(clean_db, others)) == 5, timeout=60, what="the other account's leads"
        )
        left_behind = undelivered(clean_db, backlog)
        wait_for(lambda: undelivered(clean_db, backlog) == 0, timeout=600, interval=1, what="the backlog")
    finally:
        for proc in procs:
            proc.stop()

    log = sandbox.requests()
    assert [sandbox.throttled(), sandbox.throttled(SECOND[0])] == [0, 0], throttled_context(log)
    assert len(sandbox.opportunities()) == BACKLOG
    assert len(sandbox.opportunities(SECOND[0])) == 5
    # the other account's leads went through while most of the backlog still waited
    assert left_behind > BACKLOG // 2

    main_calls = [r for r in log if r["tenant"] == "sandbox@leadrelay.local"]
    writes = sorted(r["at"] for r in main_calls if r["method"] != "GET" and r["status"] == 200)
    assert len(writes) == 2 * BACKLOG  # a new coworker and an opportunity per lead
    per_minute = (len(writes) - 1) / (writes[-1] - writes[0]) * 60 / SPEED
    used = per_minute / 60
    requests_per_lead = len(main_calls) / BACKLOG
    # Reported, not asserted: how much of the ceiling is used depends on the CPU
    # this shares; bench/ measures it against a baseline (python -m bench).
    print(
        f"\nwrites/min used: {per_minute:.1f} of 60 ({used:.1%}); requests per lead: {requests_per_lead:.2f}"
    )
    # find the coworker by email, create it, create the opportunity: nothing repeated
    assert requests_per_lead < 3.1
