"""A lead through real processes (`leadrelay serve`, `leadrelay worker` with a prefork pool):
every process's events reach /metrics, and the logs name the lead but never the person."""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from leadrelay.children import Child, wait_http
from leadrelay.models import Lead, LeadState
from leadrelay.routing import load_routing
from leadrelay.testing.processes import service_env
from tests.conftest import free_port
from tests.helpers import canonical, wait_for
from tests.intake.test_webhooks import signed
from tests.operations.support import PERSON, PHONE_FORMS

MESSAGE = "Looking for six desks near the canal for our pastry team"


@dataclass
class Stack:
    receiver: str
    worker_metrics: str
    logs: Path


@pytest.fixture
def stack(clean_db: str, redis_broker: str, sandbox, tmp_path: Path) -> Iterator[Stack]:
    env = service_env(
        NEXUDUS_BASE_URL=sandbox.base_url,
        NEXUDUS_USERNAME="sandbox@leadrelay.local",
        NEXUDUS_PASSWORD="sandbox",
        LEADRELAY_DATA_DIR=str(tmp_path),
    )
    port, metrics_port = free_port(), free_port()
    receiver = Child("receiver", ["serve", "--port", str(port), "--workers", "2"], env=env, logdir=tmp_path)
    worker = Child(
        "worker",
        ["worker", "--concurrency", "2", "--pool", "prefork", "--beat", "--metrics-port", str(metrics_port)],
        env=env,
        logdir=tmp_path,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", receiver)
        wait_http(f"http://127.0.0.1:{metrics_port}/metrics", worker)
        yield Stack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}", tmp_path)
    finally:
        for proc in (receiver, worker):
            proc.stop()


def send_lead(stack: Stack, delivery_id: str) -> int:
    secret = load_routing(None).channels["canonical"].webhook.secret.get_secret_value()  # type: ignore[union-attr]
    body = json.dumps(canonical(external_id="zq-1", contact=PERSON, message=MESSAGE)).encode()
    answer = httpx.post(
        f"{stack.receiver}/webhooks/canonical",
        content=body,
        headers=signed(secret, body, delivery_id=delivery_id),
    )
    assert answer.status_code == 202, answer.text
    return int(answer.json()["event_id"])


def state_of(url: str, lead_id: int) -> str | None:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return session.execute(select(Lead.state).where(Lead.id == lead_id)).scalar_one_or_none()
    finally:
        engine.dispose()


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    families = text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_every_process_counts_its_events_and_metrics_add_them_up(stack: Stack, clean_db: str) -> None:
    lead_id = send_lead(stack, "msg_metrics_1")
    wait_for(lambda: state_of(clean_db, lead_id) == LeadState.delivered, timeout=60, what="delivery")

    received = samples(stack.receiver)
    assert (
        received[("leadrelay_leads_received_total", (("channel", "canonical"), ("source", "webhook")))] == 1
    )
    assert received[("leadrelay_leads_undelivered", (("state", "received"),))] == 0

    worked = samples(stack.worker_metrics)
    assert (
        worked[("leadrelay_leads_delivered_total", (("channel", "canonical"), ("kind", "opportunity")))] == 1
    )
    calls = {
        labels: v for (name, labels), v in worked.items() if name == "leadrelay_nexudus_request_seconds_count"
    }
    assert sum(calls.values()) >= 3  # a login, a customer, an opportunity at least
    assert (("account", "main"), ("call", "POST crmopportunities"), ("outcome", "ok")) in calls


def test_a_burst_reaches_the_worker_as_fan_out_messages_and_each_lead_once(
    stack: Stack, clean_db: str
) -> None:
    """Webhooks answered together leave a receiver as one message; a worker fans it out (worker.queue)."""
    secret = load_routing(None).channels["canonical"].webhook.secret.get_secret_value()  # type: ignore[union-attr]

    def post(n: int) -> int:
        person = {"full_name": f"Burst Person {n}", "email": f"burst.{n}@example.org"}
        body = json.dumps(canonical(external_id=f"burst-{n}", contact=person)).encode()
        answer = httpx.post(
            f"{stack.receiver}/webhooks/canonical", content=body, headers=signed(secret, body)
        )
        assert answer.status_code == 202, answer.text
        return int(answer.json()["event_id"])

    with ThreadPoolExecutor(max_workers=30) as pool:
        lead_ids = list(pool.map(post, range(30)))
    engine = create_engine(clean_db)
    try:

        def settled() -> list[tuple[str, int | None]]:
            with Session(engine) as session:
                rows = session.execute(select(Lead.state, Lead.opportunity_id).where(Lead.id.in_(lead_ids)))
                return [(state, opportunity) for state, opportunity in rows]

        wait_for(
            lambda: [state for state, _ in settled()] == [LeadState.delivered] * 30,
            timeout=90,
            what="30 deliveries",
        )
        assert len({opportunity for _, opportunity in settled()}) == 30  # one opportunity each
    finally:
        engine.dispose()
    fanned = [
        event
        for line in (stack.logs / "worker.log").read_text(errors="replace").splitlines()
        if line.startswith("{") and (event := json.loads(line)).get("event") == "fanned_out"
    ]
    assert fanned, "thirty webhooks at once left the receivers one message each"
    assert all(int(e["leads"]) >= 2 and e["sent"] == e["leads"] for e in fanned)
    assert sum(int(e["leads"]) for e in fanned) <= 30
    creates = samples(stack.worker_metrics)[
        (
            "leadrelay_nexudus_request_seconds_count",
            (("account", "main"), ("call", "POST crmopportunities"), ("outcome", "ok")),
        )
    ]
    assert creates == 30  # one create a lead: a lead's second message found it claimed or settled


def test_each_serving_process_freezes_what_its_startup_made(stack: Stack) -> None:
    """leadrelay.heap: both receiver processes, the worker and each pool process (prefork)."""

    def freezes() -> list[dict[str, object]]:
        return [
            event
            for name in ("receiver.log", "worker.log")
            for line in (stack.logs / name).read_text(errors="replace").splitlines()
            if line.startswith("{") and (event := json.loads(line)).get("event") == "heap_frozen"
        ]

    expected = {"receiver": 2, "worker": 1, "pool process": 2}
    wait_for(
        lambda: collections.Counter(e["where"] for e in freezes()) == expected,
        timeout=30,
        what="heap_frozen from both receivers, the worker and its two pool processes",
    )
    # the imported modules and the app: most of a process's objects (~190,000 on the bench machine)
    assert all(int(str(e["frozen"])) > 50_000 for e in freezes())


def test_the_logs_name_the_lead_but_never_the_person(stack: Stack, clean_db: str) -> None:
    lead_id = send_lead(stack, "msg_logs_1")
    wait_for(lambda: state_of(clean_db, lead_id) == LeadState.delivered, timeout=60, what="delivery")
    httpx.get(f"{stack.receiver}/admin/api/leads", headers={"Authorization": "Bearer wrong"})

    lines = [
        line
        for name in ("receiver.log", "worker.log")
        for line in (stack.logs / name).read_text(errors="replace").splitlines()
        if line.strip()
    ]
    assert len(lines) > 10
    personal = [PERSON["full_name"], PERSON["email"], PERSON["company"], MESSAGE, *PHONE_FORMS]
    personal += [*PERSON["full_name"].split(), PERSON["email"].split("@")[0]]
    for line in lines:
        for value in personal:
            assert value.lower() not in line.lower(), f"{value!r} is in a log line: {line}"
        assert "whsec_" not in line and "Bearer" not in line

    events = [json.loads(line) for line in lines if line.startswith("{")]
    about = [e for e in events if e.get("lead_id") == lead_id]
    assert {"webhook_received", "lead_delivered", "lead_processed"} <= {e["event"] for e in about}
    for event in about:
        assert (event["channel"], event["event_id"]) == ("canonical", "msg_logs_1"), event
