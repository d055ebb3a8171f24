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

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from leadrelay.runtime import Runtime
from leadrelay.vitals import UNDELIVERED, Vitals, read_vitals

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
    return [age, undelivered, letters, logins, queue, swept]


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
                vitals = read_vitals(session, accounts=list(self._rt.routing.accounts))
        except SQLAlchemyError:
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *_families(vitals, self._queue_depths())]
