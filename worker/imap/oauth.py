"""OAuth2 access tokens for XOAUTH2, cached per process and refreshed before they expire.

Microsoft 365 and Google Workspace have turned basic IMAP authentication off;
their mailboxes take ``AUTHENTICATE XOAUTH2`` with a bearer token from the
tenant's token endpoint (client-credentials or refresh-token grant).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from leadrelay.routing import OAuth2Config, RoutingError
from leadrelay.worker.imap.errors import InboxError
from leadrelay.worker.imap.tokens import configured_refresh_token

EARLY_REFRESH_SECONDS = 300.0  # refresh this long before expiry, or halfway for short-lived tokens


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # time.monotonic()


class RefreshStore(Protocol):
    """Where an inbox's newest refresh token lives beyond this process (the ledger: tokens.py)."""

    def load(self) -> str | None: ...

    def rotated(self, token: str, *, replaced: str) -> None: ...


_tokens: dict[str, _Token] = {}
_rotated: dict[str, str] = {}  # refresh tokens the endpoint replaced during this process
_lock = threading.Lock()


def _cache_key(config: OAuth2Config) -> str:
    parts = (config.token_url, config.client_id, config.scope or "", config.grant)
    refresh = config.refresh_token.get_secret_value() if config.refresh_token else config.refresh_token_env
    return hashlib.sha256("\x00".join((*parts, refresh or "")).encode()).hexdigest()


def access_token(
    config: OAuth2Config, *, where: str, timeout: float, store: RefreshStore | None = None
) -> str:
    """A valid access token: the cached one, or a fresh one when it is close to expiry.

    With a ``store``, the refresh token is its newest one (else the configured one), and a
    rotated refresh token is kept there before the new access token is used.
    """
    key = _cache_key(config)
    with _lock:  # one fetch at a time: concurrent pollers reuse the token the first one got
        token = _tokens.get(key)
        if token is None or time.monotonic() >= token.refresh_at:
            token = _tokens[key] = _fetch(config, key, where=where, timeout=timeout, store=store)
        return token.value


def forget(config: OAuth2Config) -> None:
    """Drop the cached token (the server refused it: revoked, or the app lost its rights)."""
    with _lock:
        _tokens.pop(_cache_key(config), None)


def clear() -> None:
    """Forget every cached token (and rotated refresh token) of this process."""
    with _lock:
        _tokens.clear()
        _rotated.clear()


def _refresh_token(config: OAuth2Config, key: str, where: str, store: RefreshStore | None) -> str:
    stored = store.load() if store is not None else None
    refresh = stored or _rotated.get(key) or configured_refresh_token(config, where)
    if not refresh:
        raise InboxError(
            f"{where}: no refresh token yet: run `leadrelay inbox authorize` for this inbox",
            retryable=False,
            kind="consent",
        )
    return refresh


def _form(config: OAuth2Config, where: str, refresh: str | None) -> dict[str, str]:
    try:
        secret = config.resolved_client_secret(where)
    except RoutingError as err:
        raise InboxError("; ".join(err.problems), retryable=False, kind="config") from None
    form = {"grant_type": config.grant, "client_id": config.client_id}
    if secret is not None:
        form["client_secret"] = secret.get_secret_value()
    if config.scope:
        form["scope"] = config.scope
    if refresh is not None:
        form["refresh_token"] = refresh
    return form


def _fetch(
    config: OAuth2Config, key: str, *, where: str, timeout: float, store: RefreshStore | None
) -> _Token:
    refresh = _refresh_token(config, key, where, store) if config.grant == "refresh_token" else None
    endpoint = urlsplit(config.token_url).netloc
    try:
        answer = httpx.post(
            config.token_url,
            data=_form(config, where, refresh),
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise InboxError(
            f"cannot reach the token endpoint {endpoint} ({type(exc).__name__}): check {where}.token_url",
            retryable=True,
            kind="network",
        ) from None
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        code = body.get("error", "no access_token") if isinstance(body, dict) else "unreadable answer"
        retryable = answer.status_code >= 500 or answer.status_code == 429
        consent = code == "invalid_grant" and config.grant == "refresh_token"
        fix = (
            "the refresh token was revoked or expired (consent withdrawn, password changed): run "
            "`leadrelay inbox authorize` again"
            if consent
            else f"check {where}.client_id, client_secret, scope"
            + (" and refresh_token" if config.grant == "refresh_token" else "")
        )
        raise InboxError(
            f"the token endpoint {endpoint} answered {answer.status_code} ({str(code)[:60]}): {fix}",
            retryable=retryable,
            kind="consent" if consent else ("server" if retryable else "auth"),
        )
    new_refresh = body.get("refresh_token")
    if isinstance(new_refresh, str) and new_refresh and refresh is not None and new_refresh != refresh:
        _rotated[key] = new_refresh
        if store is not None:
            store.rotated(new_refresh, replaced=refresh)
    try:
        lifetime = float(body.get("expires_in", 3600))
    except (TypeError, ValueError):
        lifetime = 3600.0
    early = min(EARLY_REFRESH_SECONDS, lifetime / 2)
    return _Token(value=str(body["access_token"]), refresh_at=time.monotonic() + lifetime - early)
