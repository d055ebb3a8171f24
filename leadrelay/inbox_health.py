"""Is each configured inbox being read? Its state from the ``mailboxes`` row, in one query.

An inbox is

* ``never polled`` — no pass has ended yet (a new inbox, or no scheduler runs);
* ``ok`` — its last pass finished;
* ``failing`` — its last pass failed (the error's kind and reason say why), but for
  less than ``LEADRELAY_INBOX_STALE_INTERVALS`` poll intervals;
* ``stale`` — it has not been read for that many poll intervals: that many passes
  failed in a row, or no pass has finished for that long (revoked password,
  expired consent, a server that is down, or no poller at all). ``/readyz``,
  the ``inbox:<name>`` alert and ``leadrelay_inbox_up`` say so; the next pass
  that finishes clears it. docs/runbook.md#inbox says what each kind of error means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from leadrelay.db import utcnow
from leadrelay.models import MailboxState
from leadrelay.routing import Routing

State = Literal["ok", "failing", "stale", "never polled"]


@dataclass(frozen=True, slots=True)
class InboxHealth:
    inbox: str
    interval: float  # its poll_interval_seconds
    state: State
    polled_at: datetime | None = None  # the last pass's end, whatever its outcome
    last_ok_at: datetime | None = None
    failing_since: datetime | None = None
    failures: int = 0  # passes failed in a row
    error_kind: str | None = None
    last_error: str | None = None  # one line for an operator: no credentials, no mail content
    uidvalidity: int | None = None
    last_uid: int = 0
    imported: int = 0  # new messages recorded, over every pass
    polling: bool = False  # a pass holds the lease now
    ok_age: float | None = None  # seconds since the last pass that finished

    @property
    def stale(self) -> bool:
        return self.state == "stale"

    def summary(self) -> str:
        """One line for /readyz and the alert: what is wrong, for how long, and why."""
        if not self.stale:
            return f"inbox {self.inbox!r} is read ({self.state})"
        since = "has never been read" if self.ok_age is None else f"not read for {self.ok_age:.0f}s"
        why = f"{self.error_kind}: {self.last_error}" if self.last_error else "no pass has finished"
        return (
            f"inbox {self.inbox!r} {since} ({self.failures} failed passes in a row; "
            f"poll interval {self.interval:g}s) — {why}"
        )


def intervals(routing: Routing) -> dict[str, float]:
    """Each configured inbox's poll interval, by name."""
    return {name: config.poll_interval_seconds for name, config in routing.inboxes.items()}


def _state(row: MailboxState, limit: float, intervals_: float, now: datetime) -> tuple[State, float | None]:
    ok_age = (now - row.last_ok_at).total_seconds() if row.last_ok_at else None
    if row.polled_at is None:
        return "never polled", ok_age
    reference = row.last_ok_at or row.failing_since
    if row.failures >= intervals_ or (reference is not None and (now - reference).total_seconds() > limit):
        return "stale", ok_age
    return ("failing" if row.failures else "ok"), ok_age


def read_inbox_health(
    session: Session, inboxes: Mapping[str, float], *, stale_intervals: float, now: datetime | None = None
) -> list[InboxHealth]:
    """The health of every inbox in ``inboxes`` (name → poll interval), in name order."""
    if not inboxes:
        return []
    at = now or utcnow()
    query = select(MailboxState).where(MailboxState.inbox.in_(list(inboxes)))
    rows = {row.inbox: row for row in session.execute(query).scalars()}
    found = []
    for name in sorted(inboxes):
        interval, row = inboxes[name], rows.get(name)
        if row is None:
            found.append(InboxHealth(inbox=name, interval=interval, state="never polled"))
            continue
        state, ok_age = _state(row, stale_intervals * interval, stale_intervals, at)
        found.append(
            InboxHealth(
                inbox=name,
                interval=interval,
                state=state,
                polled_at=row.polled_at,
                last_ok_at=row.last_ok_at,
                failing_since=row.failing_since,
                failures=row.failures,
                error_kind=row.error_kind,
                last_error=row.last_error,
                uidvalidity=row.uidvalidity,
                last_uid=row.last_uid,
                imported=row.imported,
                polling=row.lease_until is not None and row.lease_until > at,
                ok_age=ok_age,
            )
        )
    return found
