"""Speed to lead: each new opportunity (and each later introduction) is told to staff exactly once.

Real parts: the Postgres ledger, the Nexudus sandbox over HTTP, an SMTP server
(aiosmtpd) and a webhook receiver over HTTP.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from leadrelay.db import transaction, utcnow
from leadrelay.models import DeadLetter, Notification
from leadrelay.runtime import Runtime
from leadrelay.testing.receivers import SmtpServer, WebhookReceiver
from leadrelay.worker.dead_letters import replay
from leadrelay.worker.pipeline import process
from leadrelay.worker.speed_to_lead.sender import _claim, _send_one, send_due
from tests.conftest import OPEN_BUDGET, ThreadedServer, routing_with, sandbox_settings
from tests.helpers import canonical, ingest, lead, make_due

ANN = "ann.sales@operator.example"


def notifying_routing(webhook_url: str) -> Any:
    return routing_with(
        accounts=OPEN_BUDGET,
        staff={501: {"name": "Ann Sales", "email": ANN}},
        assignment=[{"mode": "fixed", "staff": [501], "location": "foundry"}],
        notifications={
            "enabled": True,
            "opportunity_url": "https://dashboard.nexudus.com/crm/opportunities/{id}",
            "teams": {
                "foundry": {"email": ["foundry-team@operator.example"], "webhook": {"url": webhook_url}},
                "missionhub": {"email": ["mission-team@operator.example"]},
            },
        },
    )


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def hook() -> Iterator[tuple[WebhookReceiver, str]]:
    receiver = WebhookReceiver()
    with ThreadedServer(receiver) as server:
        yield receiver, f"{server.base_url}/hooks/foundry"


@pytest.fixture
def rt(clean_db: str, sandbox: Any, smtp: SmtpServer, hook: tuple[WebhookReceiver, str]) -> Iterator[Runtime]:
    settings = sandbox_settings(
        clean_db,
        sandbox,
        budget_wait_seconds=1.0,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        smtp_from="leadrelay@operator.example",
        write_landing_seconds=0.0,
    )
    runtime = Runtime.load(settings, notifying_routing(hook[1]))
    yield runtime
    runtime.close()


def person(n: int, **changes: Any) -> dict[str, Any]:
    contact = {"full_name": f"Client {n}", "email": f"client{n}@stl.example", "company": f"Firm {n}"}
    return canonical(external_id=f"stl-{n}", contact=contact, **changes)


def outbox(rt: Runtime) -> list[Notification]:
    with transaction(rt.sessions) as session:
        rows = list(session.execute(select(Notification).order_by(Notification.id)).scalars())
        session.expunge_all()
        return rows


def test_a_new_opportunity_is_told_once_by_email_and_webhook(
    rt: Runtime, sandbox: Any, smtp: SmtpServer, hook: tuple[WebhookReceiver, str]
) -> None:
    lead_id = ingest(rt, person(1))
    assert process(rt, lead_id, owner="w") == "delivered"
    row = lead(rt, lead_id)
    assert [(n.transport, n.recipient, n.state) for n in outbox(rt)] == [
        ("email", ANN, "pending"),  # the assigned salesperson, not the team
        ("webhook", "team:foundry", "pending"),
    ]
    assert send_due(rt, owner="s1").sent == 2
    assert send_due(rt, owner="s2").sent == 0  # sent is sent

    [mail] = smtp.messages()
    assert mail.recipients == [ANN]
    text = mail.message.get_content()
    opportunity = f"https://dashboard.nexudus.com/crm/opportunities/{row.opportunity_id}"
    for fact in ("Ann Sales", "Client 1", "Firm 1", "Desks: 8–10", "GBP 5,200 per month", opportunity):
        assert fact in text
    assert "reject this one by" in text
    assert mail.message["Subject"] == "New opportunity via Broker: Client 1, Firm 1 (foundry)"
    receiver = hook[0]
    [(_, headers, body)] = receiver.posts
    assert body["event"] == "opportunity.created"
    assert body["opportunity"] == {"id": row.opportunity_id, "url": opportunity}
    assert body["client"]["email"] == "client1@stl.example"
    assert body["broker"] and body["requirements"]["desks"] == {"min": 8, "max": 10}
    # the receivers can drop a repeat: one stable key per notification
    assert headers["idempotency-key"] == body["idempotency_key"]
    assert mail.message["Message-ID"].endswith("@operator.example>")
    assert all(n.state == "sent" and n.sent_at is not None for n in outbox(rt))


def test_a_retried_delivery_and_a_replay_owe_one_notification(
    rt: Runtime, sandbox: Any, smtp: SmtpServer
) -> None:
    lead_id = ingest(rt, person(2))
    # the first create fails outright (dead), an admin replays it: one opportunity, one notification
    sandbox.add_fault("status", method="POST", path_regex="crmopportunities$", status=400, times=1)
    assert process(rt, lead_id, owner="w") == "dead"
    assert outbox(rt) == []
    with transaction(rt.sessions) as session:
        letter = session.execute(select(DeadLetter.id).where(DeadLetter.lead_id == lead_id)).scalar_one()
        replay(session, letter, actor="test", routing=rt.routing)
    assert process(rt, lead_id, owner="w") == "delivered"
    # a retried create whose answer was lost: found again by the retry, settled once
    second = ingest(rt, person(3))
    sandbox.add_fault("drop_after_commit", method="POST", path_regex="crmopportunities$", times=1)
    outcome = process(rt, second, owner="w")
    assert outcome == "retry"
    while outcome in ("retry", "throttled", "waiting"):
        make_due(rt, second)
        outcome = process(rt, second, owner="w")
    assert outcome == "delivered"
    assert len(sandbox.opportunities()) == 2
    send_due(rt, owner="s")
    assert sorted(m.recipients[0] for m in smtp.messages()) == [ANN, ANN]
    assert [n.lead_id for n in outbox(rt) if n.transport == "email"] == [lead_id, second]


def test_a_later_introduction_is_told_to_whoever_has_the_opportunity(rt: Runtime, smtp: SmtpServer) -> None:
    first = ingest(rt, person(4))
    assert process(rt, first, owner="w") == "delivered"
    later = canonical(
        external_id="stl-4-bis",
        contact={"full_name": "Client 4", "email": "client4@stl.example"},
        broker={"name": "Other Brokers Ltd", "email": "deals@other.example"},
    )
    second = ingest(rt, later)
    assert process(rt, second, owner="w") == "attached"
    send_due(rt, owner="s")
    subjects = [m.message["Subject"] for m in smtp.messages()]
    assert subjects == [
        "New opportunity via Broker: Client 4, Firm 4 (foundry)",
        "Later introduction via Broker: Client 4 (foundry)",
    ]
    text = smtp.messages()[1].message.get_content()
    assert "Other Brokers Ltd" in text and "reject this introduction by" in text
    assert [n.event for n in outbox(rt) if n.transport == "email"] == ["created", "attached"]


def test_a_sender_killed_mid_send_leaves_the_row_to_be_sent_once_more(
    rt: Runtime, smtp: SmtpServer, hook: tuple[WebhookReceiver, str]
) -> None:
    lead_id = ingest(rt, person(5))
    assert process(rt, lead_id, owner="w") == "delivered"
    # a sender claimed the rows and died: while its claim holds, nobody else sends them
    with transaction(rt.sessions) as session:
        session.execute(
            update(Notification).values(
                claimed_by="dead-sender", claimed_until=utcnow() + timedelta(minutes=1)
            )
        )
    assert send_due(rt, owner="s1").sent == 0
    with transaction(rt.sessions) as session:
        session.execute(update(Notification).values(claimed_until=utcnow() - timedelta(seconds=1)))
    assert send_due(rt, owner="s2").sent == 2
    assert len(smtp.messages()) == 1 and len(hook[0].posts) == 1


def test_a_failing_webhook_is_tried_again_later(
    rt: Runtime, smtp: SmtpServer, hook: tuple[WebhookReceiver, str]
) -> None:
    receiver = hook[0]
    receiver.status = 503
    lead_id = ingest(rt, person(6))
    assert process(rt, lead_id, owner="w") == "delivered"
    report = send_due(rt, owner="s")
    assert (report.sent, report.failed) == (1, 1)
    [waiting] = [n for n in outbox(rt) if n.transport == "webhook"]
    assert waiting.state == "pending" and waiting.attempts == 1
    assert "HTTP 503" in (waiting.last_error or "")
    assert send_due(rt, owner="s").sent == 0  # not due yet
    receiver.status = 200
    with transaction(rt.sessions) as session:
        session.execute(update(Notification).values(next_attempt_at=utcnow()))
    assert send_due(rt, owner="s").sent == 1
    assert len(receiver.posts) == 1 and len(smtp.messages()) == 1


def test_a_sender_whose_claim_lapsed_sends_nothing(
    rt: Runtime, smtp: SmtpServer, hook: tuple[WebhookReceiver, str]
) -> None:
    """A slow batch: its later rows were taken over by another sender meanwhile."""
    lead_id = ingest(rt, person(7))
    assert process(rt, lead_id, owner="w") == "delivered"
    with transaction(rt.sessions) as session:
        slow = _claim(session, owner="slow", limit=10)
    with transaction(rt.sessions) as session:
        session.execute(update(Notification).values(claimed_until=utcnow() - timedelta(seconds=1)))
    assert send_due(rt, owner="quick").sent == 2
    assert [_send_one(rt, n, owner="slow") for n in slow] == [None, None]
    assert len(smtp.messages()) == 1 and len(hook[0].posts) == 1


def test_starttls_and_a_login_as_a_real_mail_server_wants_them(
    clean_db: str, sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "smtp.pem", tmp_path / "smtp.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this server's own certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    with SmtpServer(tls=tls, login=("relay", "s3cret")) as server:
        settings = sandbox_settings(
            clean_db,
            sandbox,
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security="starttls",
            smtp_username="relay",
            smtp_password="s3cret",
            smtp_from="leadrelay@operator.example",
        )
        rt = Runtime.load(settings, notifying_routing("http://127.0.0.1:9/unused"))
        try:
            lead_id = ingest(rt, person(8))
            assert process(rt, lead_id, owner="w") == "delivered"
            report = send_due(rt, owner="s")
        finally:
            rt.close()
        assert report.sent == 1  # the e-mail; the unused webhook fails and waits
        [mail] = server.messages()
        assert mail.recipients == [ANN]
        assert "Client 8" in mail.message.get_content()
