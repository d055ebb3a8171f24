"""Round-robin over three staff ids: 300 leads on three worker processes, each gets 100 ± 1."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, func, select

from leadrelay.models import Assignment, AssignmentPool, Lead
from leadrelay.testing.processes import sandbox_env, workers_and_beat
from leadrelay.worker.queue import enqueue
from tests.conftest import UNTHROTTLED, routing_with
from tests.helpers import unsettled, wait_for
from tests.staff.support import clients

STAFF = [501, 502, 503]
LEADS = 300

pytestmark = pytest.mark.services


def routing_file(tmp_path: Path) -> Path:
    base = routing_with(accounts={"main": {"limits": UNTHROTTLED}})
    data = base.model_dump(mode="json", exclude_none=True)
    data["assignment"] = [
        {"pool": "foundry-sales", "mode": "round_robin", "staff": STAFF, "location": "foundry"}
    ]
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_round_robin_over_three_staff_on_three_workers_gives_each_a_third(
    clean_db: str, redis_broker: str, sandbox, tmp_path: Path
) -> None:
    ids = clients(clean_db, LEADS, tag="rr")

    env = sandbox_env(tmp_path, sandbox.base_url, routing_file(tmp_path))
    procs = workers_and_beat(env, tmp_path)
    try:
        enqueue(ids)  # all at once: six pool slots in three processes race for them
        wait_for(lambda: unsettled(clean_db) == 0, timeout=600, interval=1.0, what="300 leads to settle")
    finally:
        for proc in procs:
            proc.stop()

    opportunities = sandbox.opportunities()
    assert len(opportunities) == LEADS
    per_staff = Counter(o.get("ResponsibleId") for o in opportunities)
    assert set(per_staff) == set(STAFF), per_staff
    assert all(abs(count - LEADS // len(STAFF)) <= 1 for count in per_staff.values()), per_staff
    print(f"round-robin over {len(STAFF)} staff, {LEADS} leads, 3 workers: {dict(sorted(per_staff.items()))}")

    check = create_engine(clean_db)
    with check.connect() as conn:
        states = Counter(conn.execute(select(Lead.state)).scalars())
        picks = conn.execute(select(func.count()).select_from(Assignment)).scalar_one()
        turns = conn.execute(
            select(AssignmentPool.turns).where(AssignmentPool.pool == "foundry-sales")
        ).scalar_one()
    check.dispose()
    assert states == {"delivered": LEADS}
    assert picks == LEADS and turns == LEADS  # one turn per enquiry: nothing picked twice
