"""What one delivery run came to."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """A run's result: returned by the Celery task, logged, compared by callers and tests.

    A ``StrEnum``: its values are the strings the task has always returned (and the
    first three are the states a lead settles in).
    """

    delivered = "delivered"  # an opportunity made (or found, made by an earlier create)
    attached = "attached"  # a note on an opportunity that was already there
    merged = "merged"  # a follow-up merged into its enquiry's opportunity
    duplicate = "duplicate"  # a twin of a delivered lead, its new fields merged in (delivery/enrich.py)
    dead = "dead"  # a dead letter opened
    retry = "retry"  # a failed attempt, counted: tried again on the retry schedule
    throttled = "throttled"  # Nexudus said wait: tried again then, not counted
    waiting = "waiting"  # handed back for a moment (a lock, a first introduction, a create landing)
    lost_lease = "lost_lease"  # another worker has the lead: nothing written
    busy = "busy"  # the account is delivering as many leads as it may
    skipped = "skipped"  # not due, or not ours to take
