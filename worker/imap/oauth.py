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
from urllib.parse import urlsplit

import httpx

from leadrelay.routing import OAuth2Config, RoutingError
from leadrelay.worker.imap.errors import InboxError

EARLY_REFRESH_SECONDS = 300.0  # refresh this long before expiry, or halfway for short-lived tokens


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # time.monotonic()


_tokens: dict[str, _Token] = {}
_rotated: dict[str, str] = {}  # refresh tokens the endpoint replaced during this process
_lock = threading.Lock()


def _cache_key(config: OAuth2Config) -> str:
    parts = (config.token_url, config.client_id, config.scope or "", config.grant)
    refresh = config.refresh_token.get_secret_value() if config.refresh_token else config.refresh_token_env
    return hashlib.sha256("\x00".join((*parts, refresh or "")).encode()).hexdigest()


def access_token(config: OAuth2Config, *, where: str, timeout: float) -> str:
    """A valid access token: the cached one, or a fresh one when it is close to expiry."""
    key = _cache_key(config)
    with _lock:  # one fetch at a time: concurrent pollers reuse the token the first one got
        token = _tokens.get(key)
        if token is None or time.monotonic() >= token.refresh_at:
            token = _tokens[key] = _fetch(config, key, where=where, timeout=timeout)
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


def _form(config: OAuth2Config, key: str, where: str) -> dict[str, str]:
    try:
        secret = config.resolved_client_secret(where)
        refresh = config.resolved_refresh_token(where) if config.grant == "refresh_token" else None
    except RoutingError as err:
        raise InboxError("; ".join(err.problems), retryable=False) from None
    form = {"grant_type": config.grant, "client_id": config.client_id}
    if secret is not None:
        form["client_secret"] = secret.get_secret_value()
    if config.scope:
        form["scope"] = config.scope
    if refresh is not None:
        form["refresh_token"] = _rotated.get(key) or refresh.get_secret_value()
    return form


def _fetch(config: OAuth2Config, key: str, *, where: str, timeout: float) -> _Token:
    endpoint = urlsplit(config.token_url).netloc
    try:
        answer = httpx.post(
            config.token_url,
            data=_form(config, key, where),
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise InboxError(
            f"cannot reach the token endpoint {endpoint} ({type(exc).__name__}): check {where}.token_url",
            retryable=True,
        ) from None
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        code = body.get("error", "no access_token") if isinstance(body, dict) else "unreadable answer"
        retryable = answer.status_code >= 500 or answer.status_code == 429
        raise InboxError(
            f"the token endpoint {endpoint} answered {answer.status_code} ({code}): check "
            f"{where}.client_id, client_secret, scope"
            + (" and refresh_token" if config.grant == "refresh_token" else ""),
            retryable=retryable,
        )
    if isinstance(body.get("refresh_token"), str):
        _rotated[key] = body["refresh_token"]
    try:
        lifetime = float(body.get("expires_in", 3600))
    except (TypeError, ValueError):
        lifetime = 3600.0
    early = min(EARLY_REFRESH_SECONDS, lifetime / 2)
    return _Token(value=str(body["access_token"]), refresh_at=time.monotonic() + lifetime - early)
