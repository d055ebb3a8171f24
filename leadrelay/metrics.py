"""Prometheus metrics, shared by the receiver and the worker.

Two kinds, and why:

* **Events** (counters, the Nexudus latency histogram) are counted where they
  happen — in the receiver, and in the worker's pool processes. Celery's prefork
  children and ``serve --workers N`` are separate processes, so they run in
  prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set up by
  :mod:`leadrelay.metrics_dir` before this module is imported): every process
  writes its own file, and ``/metrics`` adds them up.
* **State** (the backlog's age, open dead letters, queue depth, Nexudus logins)
  is read from the ledger and the broker at scrape time by
  :class:`leadrelay.ledger_metrics.LedgerCollector`, on the receiver only: the
  ledger is the truth, and no process has to remember it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

WEBHOOKS = Counter(
    "leadrelay_webhooks_total",
    "Webhook requests by channel and answer",
    ["channel", "status"],
)
RECEIVED = Counter(
    "leadrelay_leads_received_total",
    "New inbound items stored in the ledger (a webhook delivery, a mail message)",
    ["channel", "source"],
)
DUPLICATES = Counter(
    "leadrelay_leads_duplicate_total",
    "Repeats recognised: at the door (the same delivery or message) or by dedupe (the same lead)",
    ["channel", "stage"],
)
ROUTING_RELOADS = Counter(
    "leadrelay_routing_reloads_total",
    "Changed routing files read: reloaded, or refused (the old routing kept; the log says why)",
    ["outcome"],
)
IGNORED = Counter("leadrelay_leads_ignored_total", "Inbound items that are not leads", ["channel"])
DELIVERED = Counter(
    "leadrelay_leads_delivered_total",
    "Leads that reached Nexudus: a new opportunity, or a note on an existing one",
    ["channel", "kind"],
)
DEAD = Counter("leadrelay_dead_letters_total", "Dead letters opened", ["channel", "reason"])
RETRIES = Counter(
    "leadrelay_delivery_retries_total", "Failed Nexudus calls whose lead waits for a retry", ["call"]
)
THROTTLED = Counter(
    "leadrelay_nexudus_throttled_total",
    "Nexudus requests held back: by Nexudus (409/429) or by the account's shared budget",
    ["account", "by"],
)
NEXUDUS_SECONDS = Histogram(
    "leadrelay_nexudus_request_seconds",
    "Nexudus HTTP calls: time from sending to the answer (or the transport error)",
    ["account", "call", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

INBOX_POLLS = Counter(
    "leadrelay_inbox_polls_total",
    "Poll passes of an inbox by outcome: ok, or the failure's kind (auth, consent, folder, network, ...)",
    ["inbox", "outcome"],
)

NOTIFICATIONS = Counter(
    "leadrelay_notifications_total",
    "Speed-to-lead notifications handed to their transport (sent), to be tried again (retry), or given up",
    ["transport", "outcome"],
)
SPEED_TO_LEAD = Histogram(
    "leadrelay_speed_to_lead_seconds",
    "From a lead's arrival in the ledger to its notification handed to the SMTP server or webhook",
    ["transport"],
    buckets=(1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)

_ID = re.compile(r"^\d+$")


def call_label(method: str, path: str) -> str:
    """``GET crmopportunities/{id}`` from ``GET /api/crm/crmopportunities/17``: few label values."""
    parts = [p for p in path.split("?")[0].strip("/").split("/") if p]
    if parts and _ID.match(parts[-1]):
        return f"{method.upper()} {parts[-2] if len(parts) > 1 else ''}/{{id}}"
    return f"{method.upper()} {parts[-1] if parts else '/'}"


def observe_nexudus_call(account: str, method: str, path: str, outcome: str, started: float) -> None:
    """One Nexudus request took from ``started`` (time.monotonic) until now."""
    NEXUDUS_SECONDS.labels(account=account, call=call_label(method, path), outcome=str(outcome)).observe(
        time.monotonic() - started
    )


def count_throttled(account: str, *, by: str) -> None:
    THROTTLED.labels(account=account, by=by).inc()


def count_intake(channel: str, source: str, *, duplicate: bool) -> None:
    """An inbound item met the door: new, or one the ledger already holds."""
    if duplicate:
        DUPLICATES.labels(channel=channel, stage="intake").inc()
    else:
        RECEIVED.labels(channel=channel, source=source).inc()


class _ThisProcess(Collector):
    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def exposition_registry(*extra: Collector) -> CollectorRegistry:
    """What ``/metrics`` shows: every process's events (multiprocess mode) or this one's, plus ``extra``."""
    registry = CollectorRegistry()
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        # prometheus_client leaves this __init__ unannotated
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    for collector in extra:
        registry.register(collector)
    return registry


def count_poll(inbox: str, outcome: str) -> None:
    """One poll pass of ``inbox`` ended: ``ok`` or the kind of its failure."""
    INBOX_POLLS.labels(inbox=inbox, outcome=outcome).inc()


def count_settled(channel: str, state: str, reason: str = "parse_error") -> None:
    """A lead settled before delivery: a repeat, not a lead, unreadable or held (delivery counts its own)."""
    if state == "duplicate":
        DUPLICATES.labels(channel=channel, stage="dedupe").inc()
    elif state == "ignored":
        IGNORED.labels(channel=channel).inc()
    elif state == "dead":  # the adapter could not read it (or the door held it: ``reason``)
        DEAD.labels(channel=channel, reason=reason).inc()


def count_notification(transport: str, outcome: str, *, seconds: float | None) -> None:
    """A notification's send ended: ``sent`` (``seconds`` after its lead arrived), ``retry`` or ``failed``."""
    NOTIFICATIONS.labels(transport=transport, outcome=outcome).inc()
    if seconds is not None:
        SPEED_TO_LEAD.labels(transport=transport).observe(max(0.0, seconds))
