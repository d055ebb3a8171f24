"""Prometheus metrics, shared by the receiver and the worker."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOKS = Counter(
    "leadrelay_webhooks_total",
    "Webhook requests by channel and answer",
    ["channel", "status"],
)
