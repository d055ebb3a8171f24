"""Twenty introductions of one client at once, over four channels, on three worker processes."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import yaml
from sqlalchemy import create_engine, select

from leadrelay.db import make_engine, make_session_factory, transaction
from leadrelay.intake.store import record_inbound
from leadrelay.models import DeadLetter, Lead
from leadrelay.nexudus.payloads import note_marker
from leadrelay.testing.partners import sample
from leadrelay.testing.processes import sandbox_env, workers_and_beat
from leadrelay.worker.queue import enqueue
from tests.attribution.test_attribution import AMARA, hubble, workthere
from tests.conftest import UNTHROTTLED, routing_with
from tests.helpers import canonical, unsettled, wait_for


def liquidspace(n: int) -> bytes:
    body = json.loads(sample("liquidspace", "webhook-tour-requested.json").read_text())
    body["TourRequest"]["Id"] = 990000 + n
    body["TourRequest"]["Member"]["Email"] = AMARA
    return json.dumps(body).encode()


def routing_file(tmp_path: Path) -> Path:
    """Every sample listing at one location, so four portals introduce one client to it."""
    base = routing_with(accounts={"main": {"limits": UNTHROTTLED}})
    data = base.model_dump(mode="json", exclude_none=True)
    data["locations"]["foundry"]["listings"]["liquidspace"] = ["30118"]
    data["locations"]["missionhub"]["listings"] = {}
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_twenty_simultaneous_introductions_of_one_client_make_one_opportunity(
    clean_db: str, redis_broker: str, sandbox, tmp_path: Path
) -> None:
    bodies = [("hubblehq", hubble(id=f"enq_SIM{n:04}")) for n in range(5)]
    bodies += [("workthere", workthere(reference=f"WT-2026-9{n:05}")) for n in range(5)]
    bodies += [("liquidspace", liquidspace(n)) for n in range(5)]
    bodies += [
        (
            "canonical",
            json.dumps(
                canonical(external_id=f"sim-{n}", contact={"full_name": "Amara Okafor", "email": AMARA})
            ).encode(),
        )
        for n in range(5)
    ]
    engine = make_engine(clean_db)
    with transaction(make_session_factory(engine)) as session:
        ids = [
            record_inbound(
                session,
                channel=channel,
                source="webhook",
                intake_key=f"sim:{uuid.uuid4().hex}",
                body=body,
                content_type="application/json",
            ).lead_id
            for channel, body in bodies
        ]
    engine.dispose()

    env = sandbox_env(tmp_path, sandbox.base_url, routing_file(tmp_path))
    procs = workers_and_beat(env, tmp_path)
    try:
        enqueue(ids)  # all at once: six worker slots race for them

        wait_for(
            lambda: unsettled(clean_db) == 0,
            timeout=120,
            interval=0.5,
            what="all twenty introductions to settle",
        )
    finally:
        for proc in procs:
            proc.stop()

    [opportunity] = sandbox.opportunities()
    check = create_engine(clean_db)
    with check.connect() as conn:
        rows = conn.execute(select(Lead.id, Lead.state, Lead.channel, Lead.first_introduction)).all()
        letters = conn.execute(select(DeadLetter.lead_id, DeadLetter.reason, DeadLetter.message)).all()
    check.dispose()
    states = Counter(state for _, state, _, _ in rows)
    assert states == {"delivered": 1, "attached": 19}, letters
    [first] = [(lead_id, channel) for lead_id, state, channel, _ in rows if state == "delivered"]
    assert {f for _, state, _, f in rows if state == "attached"} == {first[0]}
    agents = {"hubblehq": 3001, "liquidspace": 3002, "workthere": 3003, "canonical": 3004}
    assert opportunity["AgentId"] == agents[first[1]]  # whoever was first keeps it
    for lead_id, state, _, _ in rows:
        if state == "attached":
            assert opportunity["Notes"].count(note_marker(lead_id)) == 1
    assert len([c for c in sandbox.coworkers() if c["Email"] == AMARA]) == 1
