"""The spine's promise with real processes: `leadrelay serve` + `leadrelay worker`,
Postgres + Redis, real HTTP to the Nexudus sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from leadrelay.children import Child, wait_http
from leadrelay.models import Lead, LeadState
from leadrelay.routing import load_routing
from leadrelay.testing.processes import service_env
from tests.conftest import free_port
from tests.helpers import CANONICAL, wait_for
from tests.intake.test_webhooks import signed


@pytest.fixture
def stack(clean_db: str, redis_broker: str, sandbox, tmp_path: Path) -> Iterator[str]:
    env = service_env(
        NEXUDUS_BASE_URL=sandbox.base_url,
        NEXUDUS_USERNAME="sandbox@leadrelay.local",
        NEXUDUS_PASSWORD="sandbox",
        LEADRELAY_DATA_DIR=str(tmp_path),
    )
    port = free_port()
    receiver = Child("receiver", ["serve", "--port", str(port)], env=env, logdir=tmp_path)
    worker = Child("worker", ["worker", "--concurrency", "2", "--beat"], env=env, logdir=tmp_path)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", receiver)
        yield f"http://127.0.0.1:{port}"
    finally:
        for proc in (receiver, worker):
            proc.stop()


def states(url: str) -> list[str]:
    engine = create_engine(url)
    with Session(engine) as session:
        found = [row.state for row in session.execute(select(Lead).order_by(Lead.id)).scalars()]
    engine.dispose()
    return found


def test_a_signed_webhook_becomes_exactly_one_opportunity(stack: str, sandbox, clean_db: str) -> None:
    secret = load_routing(None).channels["canonical"].webhook.secret.get_secret_value()  # type: ignore[union-attr]
    body = json.dumps(CANONICAL).encode()
    headers = signed(secret, body, delivery_id="msg_e2e_1")
    first = httpx.post(f"{stack}/webhooks/canonical", content=body, headers=headers)
    assert first.status_code == 202

    wait_for(lambda: len(sandbox.opportunities()) == 1, timeout=30, what="the opportunity")
    [opportunity] = sandbox.opportunities()
    assert (opportunity["LeadSource"], opportunity["AgentId"], opportunity["CrmBoardColumnId"]) == (
        11,
        3004,
        2001,
    )
    customers = [c for c in sandbox.coworkers() if c["Email"] == "mei.chen@example.com"]
    assert len(customers) == 1

    again = httpx.post(f"{stack}/webhooks/canonical", content=body, headers=headers)
    assert again.json() == {"event_id": first.json()["event_id"], "duplicate": True}
    fresh_id = httpx.post(f"{stack}/webhooks/canonical", content=body, headers=signed(secret, body))
    assert fresh_id.json()["duplicate"] is False

    wait_for(
        lambda: states(clean_db) == [LeadState.delivered, LeadState.duplicate], timeout=30, what="dedupe"
    )
    assert len(sandbox.opportunities()) == 1
    assert len([c for c in sandbox.coworkers() if c["Email"] == "mei.chen@example.com"]) == 1
