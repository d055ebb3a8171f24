"""An inbox's OAuth2 refresh token in the ledger: the newest one wins, in every process.

``leadrelay inbox authorize`` stores the token the user's consent gave; whenever
the token endpoint answers a refresh with a new ``refresh_token`` (rotation), the
new one replaces it before the access token is used, so a restart or another
worker never presents a token the endpoint has retired. A token that descends
from the routing file's ``refresh_token`` remembers which (a hash, ``seed``): when
the operator configures a different one, the configured one is newer and wins.

Tokens are never logged and never shown; the ledger's access control protects
them (docs/inboxes.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from leadrelay.db import insert_for, transaction, utcnow
from leadrelay.models import InboxToken
from leadrelay.routing import OAuth2Config, RoutingError
from leadrelay.worker.imap.errors import InboxError


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def configured_refresh_token(config: OAuth2Config, where: str) -> str | None:
    try:
        secret = config.resolved_refresh_token(where)
    except RoutingError as err:
        if config.authorizable:
            return None  # the ledger's token (from `leadrelay inbox authorize`) may stand in
        raise InboxError("; ".join(err.problems), retryable=False, kind="config") from None
    return secret.get_secret_value() if secret is not None else None


def _row(session: Session, inbox: str, client_id: str, token: str) -> InboxToken:
    """The inbox's row, locked (created with ``token`` when there was none)."""
    session.execute(
        insert_for(session, InboxToken)
        .values(inbox=inbox, client_id=client_id, refresh_token=token, authorized_at=utcnow())
        .on_conflict_do_nothing(index_elements=["inbox"])
    )
    row = session.get(InboxToken, inbox, with_for_update=True, populate_existing=True)
    assert row is not None
    return row


def authorized(session: Session, inbox: str, *, client_id: str, token: str) -> None:
    """What `leadrelay inbox authorize` got: it replaces whatever the inbox had."""
    row = _row(session, inbox, client_id, token)
    row.client_id, row.refresh_token, row.seed = client_id, token, None
    row.authorized_at, row.rotated_at, row.rotations = utcnow(), None, 0


@dataclass
class LedgerTokens:
    """The refresh-token store the poller hands to :func:`oauth.access_token`."""

    sessions: sessionmaker[Session]
    inbox: str
    config: OAuth2Config
    where: str

    def _seed(self) -> str | None:
        configured = configured_refresh_token(self.config, self.where)
        return _hash(configured) if configured else None

    def load(self) -> str | None:
        """The newest refresh token for this inbox and app, or None: use the configured one."""
        with self.sessions() as session:
            row = session.get(InboxToken, self.inbox)
            if row is None or row.client_id != self.config.client_id:
                return None
            if row.seed is not None and row.seed != self._seed():
                return None  # the operator configured another token since
            return row.refresh_token

    def rotated(self, token: str, *, replaced: str) -> None:
        """The endpoint replaced the refresh token ``replaced``: keep the new one before using
        its answer. A token that descends from `inbox authorize` keeps that lineage."""
        client_id = self.config.client_id
        with transaction(self.sessions) as session:
            row = _row(session, self.inbox, client_id, token)
            authorised = row.client_id == client_id and row.seed is None and row.refresh_token == replaced
            row.seed = None if authorised else self._seed()
            row.client_id, row.refresh_token = client_id, token
            row.rotated_at, row.rotations = utcnow(), row.rotations + 1
