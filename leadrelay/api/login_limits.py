"""Failed admin logins, counted in the ledger per source address and per user name.

After ``admin_login_attempts`` failures of one key within
``admin_login_window_seconds``, that key's logins are refused with 429 and a
``Retry-After`` until the oldest of those failures leaves the window — even with
the right token, so guessing cannot go on. Shared by every receiver process.
"""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from leadrelay.db import utcnow
from leadrelay.models import LoginFailure


def keys(source: str | None, user: str | None) -> list[str]:
    found = [f"addr:{source or 'unknown'}"]
    if user:
        found.append(f"name:{user[:200]}")
    return found


def retry_after(session: Session, keys: list[str], *, attempts: int, window_seconds: int) -> int | None:
    """Seconds until these keys may try again, or None when they may now."""
    since = utcnow() - timedelta(seconds=window_seconds)
    wait = 0.0
    for key in keys:
        count, oldest = session.execute(
            select(func.count(), func.min(LoginFailure.at)).where(
                LoginFailure.key == key, LoginFailure.at > since
            )
        ).one()
        if count >= attempts and oldest is not None:
            wait = max(wait, (oldest - since).total_seconds())
    return max(1, math.ceil(wait)) if wait > 0 else None


def record_failure(session: Session, keys: list[str], *, window_seconds: int) -> None:
    """One failure for each key; the ones that left the window are deleted. No commit."""
    now = utcnow()
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.key.in_(keys), LoginFailure.at <= now - timedelta(seconds=window_seconds)
        )
    )
    session.add_all(LoginFailure(key=key, at=now) for key in keys)
