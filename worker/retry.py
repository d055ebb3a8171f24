"""When to try a lead again: a schedule kept in the ledger, never in the broker."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta


def next_attempt(
    *, failures: int, schedule: Sequence[int], jitter: float, now: datetime, rng: random.Random | None = None
) -> datetime | None:
    """When to retry after ``failures`` failed attempts; None once the schedule is spent.

    ``schedule[0]`` is the first attempt's delay (normally 0); after the n-th
    failure we wait ``schedule[n]`` seconds, ± ``jitter`` so that a burst of
    failures does not come back as a burst.
    """
    if failures >= len(schedule):
        return None
    delay = float(schedule[failures])
    if jitter and delay:
        delay *= 1 + (rng or random).uniform(-jitter, jitter)
    return now + timedelta(seconds=max(0.0, delay))
