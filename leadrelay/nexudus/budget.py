"""The request budget of a Nexudus account.

For now a per-process pacer: requests at least ``min_interval_ms`` apart, and a
409/429's ``Retry-After`` honoured by every thread of this process.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from leadrelay.routing import NexudusLimits

if TYPE_CHECKING:
    from leadrelay.runtime import Runtime


class LocalBudget:
    def __init__(self, limits: NexudusLimits) -> None:
        self._interval = limits.min_interval_ms / 1000 / limits.safety
        self._write_interval = 60 / (limits.writes_per_minute * limits.safety)
        self._next_any = 0.0
        self._next_write = 0.0
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def acquire(self, *, write: bool, max_wait: float) -> float:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_any, self._blocked_until, self._next_write if write else 0.0)
            if start - now > max_wait:
                return start - now
            self._next_any = start + self._interval
            if write:
                self._next_write = start + self._write_interval
            return start - now

    def penalise(self, seconds: float) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, time.monotonic() + seconds)


def budget_for(runtime: Runtime, account: str) -> LocalBudget:
    return LocalBudget(runtime.routing.accounts[account].limits)
