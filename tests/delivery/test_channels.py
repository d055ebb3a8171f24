"""Every channel through the whole pipeline: adapters → ledger dedupe → Nexudus."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import yaml

from leadrelay.api.app import create_app
from leadrelay.intake.signatures import sign_hmac
from leadrelay.models import LeadState
from leadrelay.routing import parse_routing
from leadrelay.runtime import Runtime
from leadrelay.testing.partners import partner_cases, sample
from leadrelay.worker.pipeline import process
from tests.conftest import REPO, UNTHROTTLED, ThreadedServer, make_settings
from tests.helpers import dead_letters, ingest, lead

FIXTURES = REPO / "tests" / "fixtures"


def ingest_file(rt: Runtime, path: Path, channel: str) -> int:
    source = "email" if path.suffix == ".eml" else "webhook"
    return ingest(rt, path.read_bytes(), channel=channel, source=source)


def test_every_sample_reaches_nexudus_once_per_enquiry(runtime: Runtime, sandbox) -> None:
    """Webhook and e-mail of one enquiry are one lead, whichever arrives first."""
    outcomes = {
        case.key: process(runtime, ingest_file(runtime, case.path, case.channel), owner="w")
        for case in partner_cases("samples")
    }
    assert Counter(outcomes.values()) == {"delivered": 6, "duplicate": 5}

    by_name = {o["Name"]: o for o in sandbox.opportunities()}
    expected = {
        # name tag: (LeadSource, AgentId, CrmBoardColumnId) from the routing file
        "HubbleHq enq_8F2KQ7XW": (17, 3001, 2001),
        "HubbleHq enq_3JD90PLA": (17, 3001, 2001),
        "LiquidSpace 771245": (18, 3002, 2002),
        "Workthere WT-2026-004417": (24, 3003, 2001),
        "Kontor ktr_5c9e21": (25, 3005, 2003),
        "Broker zap-000193": (11, 3004, 2001),
    }
    assert {
        name: (o["LeadSource"], o["AgentId"], o["CrmBoardColumnId"]) for name, o in by_name.items()
    } == expected


def test_the_email_first_then_the_webhook_is_still_one_opportunity(runtime: Runtime, sandbox) -> None:
    mail = process(runtime, ingest_file(runtime, sample("kontor", "email-lead.eml"), "kontor"), owner="w")
    hook = process(runtime, ingest_file(runtime, sample("kontor", "webhook-lead.json"), "kontor"), owner="w")
    assert (mail, hook) == ("delivered", "duplicate")
    [opportunity] = sandbox.opportunities()
    customer = next(c for c in sandbox.coworkers() if c["Id"] == opportunity["CoworkerId"])
    assert customer["Email"] == "lena.vogel@example.de"
    assert customer["MobilePhone"] == "+4930901820"
    assert customer["InvoicingBusinessId"] == 1003  # Spree Space, from listing sp_10442


def test_mail_that_is_not_a_lead_is_ignored_not_dead(runtime: Runtime, sandbox) -> None:
    body = (
        b"From: Hubble <enquiries@hubblehq.com>\r\nTo: leads@foundry.example\r\n"
        b"Subject: Re: New enquiry for The Foundry (ref enq_8F2KQ7XW)\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nThanks, we have passed this on.\r\n"
    )
    lead_id = ingest(runtime, body, channel="hubblehq", source="email")
    assert process(runtime, lead_id, owner="w") == "ignored"
    row = lead(runtime, lead_id)
    assert row.state == LeadState.ignored
    assert row.note
    assert dead_letters(runtime) == []
    assert sandbox.requests() == []


def test_an_unreadable_notification_is_a_parse_error_with_the_raw_mail_kept(
    runtime: Runtime, sandbox
) -> None:
    body = (
        b"From: Workthere <no-reply@workthere.com>\r\nSubject: Workthere enquiry WT-2026-009999\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Lead reference: WT-2026-009999\r\nComments: call me\r\n"
    )
    lead_id = ingest(runtime, body, channel="workthere", source="email")
    assert process(runtime, lead_id, owner="w") == "dead"
    [letter] = dead_letters(runtime, lead_id)
    assert letter.reason == "parse_error"
    assert "contact.email: no e-mail address (looked for labels" in letter.message  # names the field to fix
    assert lead(runtime, lead_id).raw_body == body


def test_a_portal_configured_only_in_the_routing_file_flows_to_nexudus(
    clean_db, redis_broker, sandbox
) -> None:
    broker = httpx.post(
        f"{sandbox.base_url}/api/spaces/coworkers",
        auth=sandbox.auth,
        json={
            "FullName": "SpacePool (broker)",
            "Email": "brokers@spacepool.example",
            "CountryId": 1,
            "SimpleTimeZoneId": 52,
        },
    ).json()["Value"]["Id"]
    data = yaml.safe_load((FIXTURES / "configurable" / "routing.yaml").read_text())
    data["channels"]["spacepool"]["agent_id"] = broker
    data["accounts"]["main"] = {"limits": UNTHROTTLED}
    routing = parse_routing(data, "spacepool routing")
    settings = make_settings(
        database_url=clean_db,
        nexudus_base_url=sandbox.base_url,
        nexudus_username="sandbox@leadrelay.local",
        nexudus_password="sandbox",
    )
    rt = Runtime.load(settings, routing)
    try:
        body = (FIXTURES / "configurable" / "spacepool" / "webhook-enquiry.json").read_bytes()
        with ThreadedServer(create_app(rt)) as server:
            headers = {
                "content-type": "application/json",
                "x-spacepool-signature": sign_hmac(b"spacepool-demo-secret", body),
            }
            answer = httpx.post(f"{server.base_url}/webhooks/spacepool", content=body, headers=headers)
        assert answer.status_code == 202
        assert process(rt, answer.json()["event_id"], owner="w") == "delivered"
        [opportunity] = sandbox.opportunities()
        assert opportunity["LeadSource"] == 20  # SpacePool
        assert opportunity["AgentId"] == broker
        assert opportunity["Name"].startswith("SpacePool SP-")
        expected = json.loads((FIXTURES / "configurable" / "expected.json").read_text())
        assert opportunity["Name"] == f"SpacePool {expected['spacepool/webhook-enquiry.json']['external_id']}"
    finally:
        rt.close()
