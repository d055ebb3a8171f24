"""Nexudus request limits as exact sliding windows, one set per tenant.

Documented limits (developers.nexudus.com/reference/api-limitations): every request
at least 100 ms after the previous one, 120 per minute, 5,000 per hour, 200,000 per
day; writes (POST/PUT/DELETE) also 60 per minute and 5,000 per day. A refused
request does not count. ``speed`` shortens every window and interval by that factor.
"""

from __future__ import annotations

import math
from collections import deque

ALL_REQUESTS: tuple[tuple[float, int], ...] = ((0.1, 1), (60, 120), (3_600, 5_000), (86_400, 200_000))
WRITES: tuple[tuple[float, int], ...] = ((60, 60), (86_400, 5_000))
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_TOLERANCE = 1e-9  # seconds: a call exactly one window after another is in time, whatever float rounding says


class SlidingWindow:
    """At most ``limit`` admitted requests within any ``seconds`` (divided by the speed)."""

    __slots__ = ("hits", "limit", "seconds")

    def __init__(self, seconds: float, limit: int) -> None:
        self.seconds = seconds
        self.limit = limit
        self.hits: deque[float] = deque()

    def wait(self, now: float, speed: float) -> float:
        """Seconds until one more request fits (0 when it fits now)."""
        span = self.seconds / speed
        hits = self.hits
        horizon = now - span + _TOLERANCE
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) < self.limit:
            return 0.0
        return hits[len(hits) - self.limit] + span - now


class RateLimiter:
    """The windows of one Nexudus account."""

    __slots__ = ("all_requests", "writes")

    def __init__(self) -> None:
        self.all_requests = [SlidingWindow(seconds, limit) for seconds, limit in ALL_REQUESTS]
        self.writes = [SlidingWindow(seconds, limit) for seconds, limit in WRITES]

    def admit(self, now: float, speed: float, is_write: bool) -> float:
        """Record the request and answer 0, or answer the seconds to wait (nothing recorded)."""
        windows = self.all_requests + self.writes if is_write else self.all_requests
        wait = max(window.wait(now, speed) for window in windows)
        if wait <= 0:
            for window in windows:
                window.hits.append(now)
        return wait


def format_retry_after(seconds: float, *, whole: bool) -> str:
    """``Retry-After`` rounded up: whole seconds, or hundredths when the clock is sped up."""
    if whole:
        return str(max(1, math.ceil(seconds)))
    hundredths = max(1, math.ceil(seconds * 100))
    return f"{hundredths / 100:.2f}".rstrip("0").rstrip(".")
