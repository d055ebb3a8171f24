"""The ledger's state as Prometheus gauges, read at scrape time and cached a few seconds.

A scrape every few seconds from several Prometheus servers costs the database
a few small indexed queries per ``metrics_cache_seconds`` at most. When the ledger
cannot be read, ``leadrelay_ledger_up`` is 0 and the other gauges are left out
rather than reported as zero.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from leadrelay.runtime import Runtime
from leadrelay.vitals import UNDELIVERED, Vitals, runtime_vitals

QueueDepths = Callable[[], dict[str, int | None]]


def _families(vitals: Vitals, depths: dict[str, int | None]) -> list[Metric]:
    age = GaugeMetricFamily(
        "leadrelay_oldest_undelivered_lead_age_seconds",
        "How long the oldest lead not yet delivered, duplicate, ignored or dead has waited",
        value=vitals.backlog_age(),
    )
    undelivered = GaugeMetricFamily(
        "leadrelay_leads_undelivered", "Leads still on their way, by state", labels=["state"]
    )
    for state in UNDELIVERED:
        undelivered.add_metric([state.value], vitals.undelivered.get(state.value, 0))
    letters = GaugeMetricFamily(
        "leadrelay_dead_letters_open", "Open dead letters waiting for a person, by reason", labels=["reason"]
    )
    for reason, count in sorted(vitals.open_dead_letters.items()):
        letters.add_metric([reason], count)
    logins = GaugeMetricFamily(
        "leadrelay_nexudus_auth_ok",
        "1 when the account's last Nexudus login worked, 0 when it was refused (absent: not tried yet)",
        labels=["account"],
    )
    for auth in vitals.auth:
        if auth.ok is not None:
            logins.add_metric([auth.account], 1 if auth.ok else 0)
    queue = GaugeMetricFamily("leadrelay_queue_depth", "Messages waiting in the broker", labels=["queue"])
    for name, depth in sorted(depths.items()):
        if depth is not None:
            queue.add_metric([name], depth)
    swept = GaugeMetricFamily(
        "leadrelay_scheduler_last_run_age_seconds",
        "Seconds since the elected scheduler last swept the ledger (absent: never)",
    )
    if vitals.swept is not None:
        swept.add_metric([], vitals.swept.age)
    return [age, undelivered, letters, logins, queue, swept, *_inbox_families(vitals)]


def _inbox_families(vitals: Vitals) -> list[Metric]:
    labels = ["inbox"]
    up = GaugeMetricFamily(
        "leadrelay_inbox_up",
        "1 while the inbox is read (ok, or failing for less than LEADRELAY_INBOX_STALE_INTERVALS poll "
        "intervals), 0 when stale (absent: never polled)",
        labels=labels,
    )
    ok_age = GaugeMetricFamily(
        "leadrelay_inbox_last_success_age_seconds",
        "Seconds since the inbox's last poll pass that finished (absent: none yet)",
        labels=labels,
    )
    failures = GaugeMetricFamily(
        "leadrelay_inbox_consecutive_failures", "Poll passes of the inbox failed in a row", labels=labels
    )
    imported = CounterMetricFamily(
        "leadrelay_inbox_messages_imported_total", "New messages the inbox's passes recorded", labels=labels
    )
    validity = GaugeMetricFamily(
        "leadrelay_inbox_uidvalidity", "The folder's UIDVALIDITY (a change: re-scanned)", labels=labels
    )
    for health in vitals.inboxes:
        if health.state == "never polled":
            continue
        up.add_metric([health.inbox], 0 if health.stale else 1)
        failures.add_metric([health.inbox], health.failures)
        imported.add_metric([health.inbox], health.imported)
        if health.ok_age is not None:
            ok_age.add_metric([health.inbox], health.ok_age)
        if health.uidvalidity is not None:
            validity.add_metric([health.inbox], health.uidvalidity)
    return [up, ok_age, failures, imported, validity]


class LedgerCollector(Collector):
    def __init__(self, rt: Runtime, *, queue_depths: QueueDepths) -> None:
        self._rt = rt
        self._queue_depths = queue_depths
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._read_at = float("-inf")

    def collect(self) -> Iterable[Metric]:
        with self._lock:  # concurrent scrapes wait for one read instead of each querying
            if time.monotonic() - self._read_at >= self._rt.settings.metrics_cache_seconds:
                self._cached = self._read()
                self._read_at = time.monotonic()
            return list(self._cached)

    def _read(self) -> list[Metric]:
        up = GaugeMetricFamily("leadrelay_ledger_up", "1 when the ledger answered the last scrape's queries")
        try:
            with self._rt.sessions() as session:
                vitals = runtime_vitals(session, self._rt)
        except SQLAlchemyError:
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *_families(vitals, self._queue_depths())]
