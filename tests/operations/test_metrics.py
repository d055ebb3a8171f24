"""`/metrics`: what happened (events) and how things stand (read from the ledger at scrape time)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from leadrelay.metrics import call_label
from leadrelay.nexudus.auth_state import record_auth
from tests.dead_letters.test_replay import settle
from tests.helpers import canonical, ingest
from tests.intake.test_webhooks import signed
from tests.operations.support import age, receiver, runtime_with, swept


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample on /metrics, by name and labels."""
    text = httpx.get(f"{base}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def counter(name: str, **labels: str) -> Callable[[], float]:
    """How much a counter of this process grew since this call."""
    before = REGISTRY.get_sample_value(name, labels) or 0.0
    return lambda: (REGISTRY.get_sample_value(name, labels) or 0.0) - before


def test_the_ledger_gauges_show_the_backlog_dead_letters_logins_and_queue(
    clean_db, redis_broker, sandbox
) -> None:
    rt = runtime_with(clean_db, sandbox)
    try:
        waiting = ingest(rt, canonical(external_id="old"))
        age(rt, waiting, seconds=120)
        dead = ingest(rt, canonical(external_id="nobody", contact={"full_name": "nobody"}))
        assert settle(rt, dead) == "dead"
        record_auth(rt.sessions, "main", ok=False, error="refused")
        with receiver(rt) as base:
            metrics = scrape(base)
        assert metrics[("leadrelay_ledger_up", ())] == 1
        assert 119 < metrics[("leadrelay_oldest_undelivered_lead_age_seconds", ())] < 200
        assert metrics[("leadrelay_leads_undelivered", (("state", "received"),))] == 1
        assert metrics[("leadrelay_dead_letters_open", (("reason", "parse_error"),))] == 1
        assert metrics[("leadrelay_nexudus_auth_ok", (("account", "main"),))] == 0
        assert metrics[("leadrelay_queue_depth", (("queue", "leadrelay.leads"),))] == 0
    finally:
        rt.close()


def test_the_ledger_gauges_are_cached_between_scrapes(clean_db, redis_broker, sandbox) -> None:
    rt = runtime_with(clean_db, sandbox, metrics_cache_seconds=60)
    try:
        with receiver(rt) as base:
            assert scrape(base)[("leadrelay_leads_undelivered", (("state", "received"),))] == 0
            ingest(rt, canonical())
            assert scrape(base)[("leadrelay_leads_undelivered", (("state", "received"),))] == 0
    finally:
        rt.close()


def test_an_unreadable_ledger_says_so_instead_of_zeros(sandbox) -> None:
    rt = runtime_with("postgresql+psycopg://nobody@127.0.0.1:1/none", sandbox)
    try:
        with receiver(rt) as base:
            metrics = scrape(base)
        assert metrics[("leadrelay_ledger_up", ())] == 0
        assert not any(name == "leadrelay_dead_letters_open" for name, _ in metrics)
    finally:
        rt.close()


def test_webhooks_are_counted_as_received_duplicate_and_refused(clean_db, redis_broker, sandbox) -> None:
    rt = runtime_with(clean_db, sandbox)
    secret = rt.routing.channels["canonical"].webhook.secret.get_secret_value()  # type: ignore[union-attr]
    received = counter("leadrelay_leads_received_total", channel="canonical", source="webhook")
    repeated = counter("leadrelay_leads_duplicate_total", channel="canonical", stage="intake")
    refused = counter("leadrelay_webhooks_total", channel="canonical", status="401")
    try:
        with receiver(rt) as base:
            body = json.dumps(canonical()).encode()
            headers = signed(secret, body)
            for _ in range(2):
                assert (
                    httpx.post(f"{base}/webhooks/canonical", content=body, headers=headers).status_code == 202
                )
            httpx.post(f"{base}/webhooks/canonical", content=body, headers={"webhook-id": "x"})
            metrics = scrape(base)
        assert (received(), repeated(), refused()) == (1, 1, 1)
        assert (
            metrics[("leadrelay_leads_received_total", (("channel", "canonical"), ("source", "webhook")))]
            >= 1
        )
    finally:
        rt.close()


def test_delivery_outcomes_retries_throttling_and_nexudus_latency_are_counted(clean_db, sandbox) -> None:
    rt = runtime_with(clean_db, sandbox)
    delivered = counter("leadrelay_leads_delivered_total", channel="canonical", kind="opportunity")
    deduped = counter("leadrelay_leads_duplicate_total", channel="canonical", stage="dedupe")
    unreadable = counter("leadrelay_dead_letters_total", channel="canonical", reason="parse_error")
    refused = counter("leadrelay_dead_letters_total", channel="canonical", reason="validation")
    retried = counter("leadrelay_delivery_retries_total", call="coworker")
    throttled = counter("leadrelay_nexudus_throttled_total", account="main", by="nexudus")
    created = counter(
        "leadrelay_nexudus_request_seconds_count", account="main", call="POST crmopportunities", outcome="ok"
    )
    logins = counter(
        "leadrelay_nexudus_request_seconds_count", account="main", call="POST token", outcome="ok"
    )
    try:
        assert settle(rt, ingest(rt, canonical())) == "delivered"
        assert settle(rt, ingest(rt, canonical())) == "duplicate"
        assert settle(rt, ingest(rt, canonical(external_id="n", contact={"full_name": "nobody"}))) == "dead"
        phone_only = canonical(external_id="p", contact={"full_name": "Caller", "phone": "+442079460000"})
        assert settle(rt, ingest(rt, phone_only)) == "dead"
        sandbox.add_fault("status", status=503, method="GET", path_regex="coworkers$")  # type: ignore[attr-defined]
        sandbox.add_fault("throttle", method="POST", path_regex="crmopportunities$")  # type: ignore[attr-defined]
        assert (
            settle(rt, ingest(rt, canonical(external_id="q", contact={"email": "q@example.com"})))
            == "delivered"
        )
    finally:
        rt.close()
    assert (delivered(), deduped(), unreadable(), refused()) == (2, 1, 1, 1)
    assert (retried(), throttled()) == (1, 1)
    assert created() == 2
    assert logins() == 1


def test_nexudus_calls_are_labelled_by_resource_not_by_id() -> None:
    assert call_label("get", "/api/crm/crmopportunities/500123") == "GET crmopportunities/{id}"
    assert call_label("POST", "/api/spaces/coworkers") == "POST coworkers"
    assert call_label("POST", "/api/token") == "POST token"


def test_the_scheduler_gauge_says_how_long_ago_the_ledger_was_swept(clean_db, redis_broker, sandbox) -> None:
    rt = runtime_with(clean_db, sandbox)
    try:
        with receiver(rt) as base:
            assert [key for key in scrape(base) if key[0] == "leadrelay_scheduler_last_run_age_seconds"] == []
            swept(rt, seconds_ago=42)
            assert 41 < scrape(base)[("leadrelay_scheduler_last_run_age_seconds", ())] < 60
    finally:
        rt.close()
