"""``--since 2d``-style times, shared by the CLI, the admin API and the admin page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from leadrelay.db import utcnow

_AGO = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def in_utc(when: datetime) -> datetime:
    """The same instant in UTC (UTC when no offset is given); ValueError when UTC has no such year."""
    try:
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{when.isoformat()} is out of range") from None


def parse_since(text: str | None) -> datetime | None:
    """``2d``, ``12h``, ``30m`` ago, or an ISO date/time (UTC when no offset is given).

    ValueError names the accepted forms.
    """
    if text is None or not text.strip():
        return None
    match = _AGO.match(text.strip())
    try:
        if match:
            return utcnow() - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return in_utc(datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r}: use a duration like 2d, 12h, 30m or a date like 2026-11-27") from None
