"""Speed to lead on real worker processes: one notification per opportunity, its latency measured.

Three Celery workers and the scheduler deliver 30 leads to the sandbox and tell
staff over a real SMTP server and a webhook receiver; a worker is SIGKILLed
mid-run. Every opportunity's notification arrives, and — deduped by its
Message-ID / Idempotency-Key, as a receiver may — arrives once. The time from
delivery (and from intake) to the SMTP server taking the message is written to
bench/results/speed_to_lead.md (measured and reported, not asserted).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, func, select

from leadrelay.children import Child
from leadrelay.models import Lead, Notification
from leadrelay.testing.processes import sandbox_env, workers_and_beat
from leadrelay.testing.receivers import SmtpServer, WebhookReceiver
from leadrelay.worker.queue import enqueue
from tests.conftest import UNTHROTTLED, ThreadedServer, routing_with
from tests.helpers import unsettled, wait_for
from tests.staff.support import clients

LEADS = 30
STAFF = {601: "ann@operator.example", 602: "ben@operator.example", 603: "cat@operator.example"}
REPORT = Path(__file__).resolve().parents[2] / "bench" / "results" / "speed_to_lead.md"


@pytest.fixture
def hook() -> Iterator[tuple[WebhookReceiver, str]]:
    receiver = WebhookReceiver()
    with ThreadedServer(receiver) as server:
        yield receiver, f"{server.base_url}/hooks/sales"


def routing_file(tmp_path: Path, webhook_url: str) -> Path:
    base = routing_with(
        accounts={"main": {"limits": UNTHROTTLED}},
        staff={n: {"name": f"Staff {n}", "email": address} for n, address in STAFF.items()},
        assignment=[{"pool": "sales", "staff": list(STAFF)}],
        notifications={"enabled": True},
    )
    data = base.model_dump(mode="json", exclude_none=True)
    data["notifications"]["webhook"] = {"url": webhook_url}  # a dump masks secrets: set it after
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def seconds(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return f"median {statistics.median(ordered):.2f} s, p95 {p95:.2f} s, max {ordered[-1]:.2f} s"


@pytest.mark.timeout(600)
def test_each_opportunity_is_told_once_on_real_workers_a_killed_one_among_them(
    clean_db: str, redis_broker: str, sandbox, tmp_path: Path, hook: tuple[WebhookReceiver, str]
) -> None:
    ids = clients(clean_db, LEADS, tag="stlw")

    with SmtpServer() as smtp:
        env = sandbox_env(
            tmp_path,
            sandbox.base_url,
            routing_file(tmp_path, hook[1]),
            LEADRELAY_SMTP_HOST="127.0.0.1",
            LEADRELAY_SMTP_PORT=str(smtp.port),
            LEADRELAY_SMTP_SECURITY="none",
            LEADRELAY_SMTP_FROM="leadrelay@operator.example",
            LEADRELAY_NOTIFY_INTERVAL_SECONDS="2",
        )
        procs = workers_and_beat(env, tmp_path)
        try:
            enqueue(ids)
            wait_for(lambda: len(smtp.messages()) >= LEADS // 3, timeout=180, what="a third told")
            procs[0].kill()  # SIGKILL, mid-run: its claims and leases must expire, nothing be lost
            procs.append(
                Child("worker-restarted", ["worker", "--concurrency", "2"], env=env, logdir=tmp_path)
            )
            wait_for(lambda: unsettled(clean_db) == 0, timeout=300, interval=0.5, what="every lead settled")
            wait_for(lambda: _owed(clean_db) == 0, timeout=300, interval=0.5, what="every notification sent")
        finally:
            for proc in procs:
                proc.stop()
        mails = smtp.messages()

    check = create_engine(clean_db)
    with check.connect() as conn:
        delivered = {
            row.opportunity_id: row
            for row in conn.execute(select(Lead.id, Lead.opportunity_id, Lead.received_at, Lead.delivered_at))
        }
        keys = dict(conn.execute(select(Notification.key, Notification.state)).all())
    check.dispose()
    assert len(delivered) == LEADS == len(sandbox.opportunities())
    assert set(keys.values()) == {"sent"} and len(keys) == 2 * LEADS  # an e-mail and a webhook each

    by_id = Counter(m.message["Message-ID"] for m in mails)
    assert len(by_id) == LEADS  # none lost
    told = {int(m.message["X-Leadrelay-Lead"]) for m in mails}
    assert told == {row.id for row in delivered.values()}
    posts = Counter(headers["idempotency-key"] for _, headers, _ in hook[0].posts)
    assert len(posts) == LEADS
    # each went to the one its opportunity was assigned to
    opportunity_of = {row.id: row.opportunity_id for row in delivered.values()}
    responsible = {o["Id"]: o["ResponsibleId"] for o in sandbox.opportunities()}
    for mail in mails:
        assert mail.recipients == [STAFF[responsible[opportunity_of[int(mail.message["X-Leadrelay-Lead"])]]]]

    first: dict[int, float] = {}
    for mail in mails:
        first.setdefault(int(mail.message["X-Leadrelay-Lead"]), mail.at)
    rows = {row.id: row for row in delivered.values()}
    after_delivery = [first[i] - rows[i].delivered_at.timestamp() for i in first]
    after_intake = [first[i] - rows[i].received_at.timestamp() for i in first]
    repeats = sum(by_id.values()) - len(by_id) + sum(posts.values()) - len(posts)
    REPORT.write_text(
        "# Speed to lead (tests/staff/test_speed_to_lead_workers.py)\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {LEADS} leads, 3 worker processes (one SIGKILLed "
        "mid-run and replaced) and the scheduler, sandbox over HTTP, aiosmtpd, a webhook receiver.\n\n"
        "| measure | value |\n|---|---|\n"
        f"| delivery → e-mail taken by the SMTP server | {seconds(after_delivery)} |\n"
        f"| intake (ledger) → e-mail taken (the {LEADS} leads queued at once) | {seconds(after_intake)} |\n"
        f"| opportunities / distinct e-mails / webhook posts | {LEADS} / {len(by_id)} / {len(posts)} |\n"
        f"| repeats a receiver drops by Message-ID or Idempotency-Key | {repeats} |\n"
        "\nA notification the killed worker had claimed (if the kill caught one) waits for its claim "
        "to lapse (30 s) and is sent by another. Timings on a shared, loaded machine: reported, "
        "never asserted.\n"
    )
    print(REPORT.read_text())


def _owed(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(Notification).where(Notification.state != "sent")
                ).scalar_one()
            )
    finally:
        engine.dispose()
