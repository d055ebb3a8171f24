"""Whether each Nexudus account's login works, as its last token grant said.

Kept on the account's ``nexudus_accounts`` row, so that ``/readyz``, ``/metrics``
and the alerts can tell without calling Nexudus themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from leadrelay.db import transaction, utcnow
from leadrelay.models import NexudusAccount
from leadrelay.nexudus.budget import ensure_account

log = structlog.get_logger(__name__)
ERROR_LENGTH = 300


@dataclass(frozen=True, slots=True)
class AuthState:
    account: str
    ok: bool | None  # None: no login tried yet
    error: str | None
    at: datetime | None


def record_auth(sessions: sessionmaker[Session], account: str, *, ok: bool, error: str | None) -> None:
    """Remember the outcome of a token grant; a ledger failure here never fails the call."""
    try:
        with transaction(sessions) as session:
            ensure_account(session, account)
            session.execute(
                update(NexudusAccount)
                .where(NexudusAccount.account == account)
                .values(auth_ok=ok, auth_error=(error or "")[:ERROR_LENGTH] or None, auth_at=utcnow())
                .execution_options(synchronize_session=False)
            )
    except SQLAlchemyError as exc:
        log.warning("auth_state_not_recorded", account=account, error=type(exc).__name__)


def auth_states(session: Session, accounts: list[str]) -> list[AuthState]:
    """The last login outcome of each named account (unknown for one never tried)."""
    row = NexudusAccount
    rows = session.execute(
        select(row.account, row.auth_ok, row.auth_error, row.auth_at).where(row.account.in_(accounts))
    ).all()
    known = {row.account: AuthState(row.account, row.auth_ok, row.auth_error, row.auth_at) for row in rows}
    return [known.get(name, AuthState(name, None, None, None)) for name in accounts]
