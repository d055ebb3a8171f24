"""An inbox's poll state in the ledger: UIDVALIDITY, the last UID handled, the lease.

Only one poller works on an inbox at a time: it takes the lease with a guarded
UPDATE (free, expired, or already its own), renews it with every batch, and every
write to the watermark is guarded by the lease too — a poller that lost its lease
cannot move anything. Works the same on Postgres and SQLite. No function commits.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.orm import Session

from leadrelay.db import insert_for, utcnow
from leadrelay.models import MailboxState


@dataclass(frozen=True, slots=True)
class Watermark:
    uidvalidity: int | None
    last_uid: int


def new_owner() -> str:
    """A lease owner unique to this pass."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _guarded(session: Session, inbox: str, owner: str, *conditions: Any, **values: Any) -> bool:
    """Write the inbox's row only while ``owner`` holds its lease (and ``conditions`` hold)."""
    stmt = (
        update(MailboxState)
        .where(MailboxState.inbox == inbox, MailboxState.lease_owner == owner, *conditions)
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    # an UPDATE's result is a CursorResult (Session.execute is typed as returning any Result)
    return cast(CursorResult[Any], session.execute(stmt)).rowcount == 1


def acquire(
    session: Session,
    inbox: str,
    *,
    source: str,
    owner: str,
    lease_seconds: float,
    now: datetime | None = None,
) -> bool:
    """Take the inbox's lease; False while another poller holds an unexpired one."""
    at = now or utcnow()
    session.execute(
        insert_for(session, MailboxState)
        .values(inbox=inbox, source=source, last_uid=0, updated_at=at)
        .on_conflict_do_nothing(index_elements=["inbox"])
    )
    stmt = (
        update(MailboxState)
        .where(
            MailboxState.inbox == inbox,
            or_(
                MailboxState.lease_until.is_(None),
                MailboxState.lease_until < at,
                MailboxState.lease_owner == owner,
            ),
        )
        .values(lease_owner=owner, lease_until=at + timedelta(seconds=lease_seconds), updated_at=at)
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], session.execute(stmt)).rowcount != 1:  # an UPDATE: see _guarded
        return False
    current = session.execute(select(MailboxState.source).where(MailboxState.inbox == inbox)).scalar()
    if current != source:  # a re-pointed inbox (other server, account or folder): its UIDs mean nothing
        _guarded(session, inbox, owner, source=source, uidvalidity=None, last_uid=0)
    return True


def held_until(session: Session, inbox: str) -> datetime | None:
    return session.execute(select(MailboxState.lease_until).where(MailboxState.inbox == inbox)).scalar()


def renew(session: Session, inbox: str, *, owner: str, lease_seconds: float) -> bool:
    """Extend our lease; False means it expired and another poller took the inbox."""
    return _guarded(session, inbox, owner, lease_until=utcnow() + timedelta(seconds=lease_seconds))


def watermark(session: Session, inbox: str) -> Watermark:
    row = session.execute(
        select(MailboxState.uidvalidity, MailboxState.last_uid).where(MailboxState.inbox == inbox)
    ).one()
    return Watermark(uidvalidity=row.uidvalidity, last_uid=row.last_uid)


def rebase(session: Session, inbox: str, *, owner: str, uidvalidity: int) -> bool:
    """The folder's UIDVALIDITY changed: every UID is new, so scan it again from the start."""
    return _guarded(session, inbox, owner, uidvalidity=uidvalidity, last_uid=0)


def advance(session: Session, inbox: str, *, owner: str, uidvalidity: int, last_uid: int) -> bool:
    """Move the watermark forward (never back), for the UIDVALIDITY it was read under."""
    return _guarded(
        session,
        inbox,
        owner,
        MailboxState.uidvalidity == uidvalidity,
        MailboxState.last_uid < last_uid,
        last_uid=last_uid,
    )


def release(
    session: Session, inbox: str, *, owner: str, error: str | None, kind: str | None = None, imported: int = 0
) -> bool:
    """End the pass: free the lease and keep its health — a success clears the failures, a
    failure counts one more (and remembers since when the inbox has been failing)."""
    at = utcnow()
    health: dict[str, Any]
    if error is None:
        health = {"last_ok_at": at, "failures": 0, "error_kind": None, "failing_since": None}
    else:
        health = {
            "failures": MailboxState.failures + 1,
            "error_kind": kind,
            "failing_since": func.coalesce(MailboxState.failing_since, at),
        }
    return _guarded(
        session,
        inbox,
        owner,
        lease_owner=None,
        lease_until=None,
        polled_at=at,
        last_error=error,
        imported=MailboxState.imported + imported,
        **health,
    )
