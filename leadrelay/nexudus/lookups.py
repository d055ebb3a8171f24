"""Reads for one-off commands (``leadrelay init``, ``leadrelay check``): a record by id, every
record of a search, paced one request at a time and patient with a throttled answer."""

from __future__ import annotations

import time
from typing import Any

from leadrelay.nexudus.classify import Outcome, Result
from leadrelay.nexudus.client import MAX_PAGES, PAGE_SIZE, NexudusClient, Unlimited


class Paced(Unlimited):
    """One request per ``interval`` seconds (Nexudus allows one per 100 ms)."""

    def __init__(self, interval: float = 0.15) -> None:
        self._interval = interval
        self._next = 0.0

    def pace_send(self) -> float:
        now = time.monotonic()
        wait = max(0.0, self._next - now)
        self._next = max(now, self._next) + self._interval
        return wait


def _patiently(client: NexudusClient, path: str, params: dict[str, Any] | None) -> Result:
    """A GET that waits out up to three throttled answers (five seconds each at most)."""
    for _ in range(3):
        result = client.call("GET", path, params=params)
        if result.outcome is not Outcome.throttle:
            return result
        time.sleep(min(result.retry_after or 1.0, 5.0))
    return client.call("GET", path, params=params)


def record(client: NexudusClient, path: str, record_id: int) -> Result:
    """``value``: the record, or None when Nexudus answers 404 (no such id)."""
    result = _patiently(client, f"{path}/{record_id}", None)
    if result.status_code == 404:
        return Result(Outcome.ok, 404, value=None)
    return result


def records_page(client: NexudusClient, path: str) -> Result:
    """The first record of a search: whether (and how) Nexudus answers ``path`` at all."""
    return _patiently(client, path, {"page": 1, "size": 1})


def records(client: NexudusClient, path: str, params: dict[str, Any] | None = None) -> Result:
    """``value``: every record of a search (all pages, up to ``MAX_PAGES``)."""
    found: list[dict[str, Any]] = []
    result = Result(Outcome.ok, None)
    for page in range(1, MAX_PAGES + 1):
        result = _patiently(client, path, {**(params or {}), "page": page, "size": PAGE_SIZE})
        if not result.ok:
            return result
        envelope = result.value if isinstance(result.value, dict) else {}
        found.extend(r for r in envelope.get("Records") or [] if isinstance(r, dict))
        if not envelope.get("HasNextPage"):
            break
    return Result(Outcome.ok, result.status_code, value=found)
