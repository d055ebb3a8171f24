"""Who may use the admin API and page: the holder of ``LEADRELAY_ADMIN_TOKEN``.

No token configured means the admin surface is disabled. Tokens are compared in
constant time. The page keeps a signed session cookie (HMAC with the token, so
rotating the token logs everyone out) and a CSRF token derived from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

SESSION_COOKIE = "leadrelay_admin"
SESSION_SECONDS = 8 * 3600
_ACTOR = re.compile(r"[^\w .@+-]")
bearer = HTTPBearer(auto_error=False, description="LEADRELAY_ADMIN_TOKEN")


def admin_token(request: Request) -> bytes | None:
    token = request.app.state.runtime.settings.admin_token
    return token.get_secret_value().encode() if token is not None and token.get_secret_value() else None


def _as_bytes(offered: str) -> bytes:
    """What a client sent, as bytes: ``compare_digest`` refuses a ``str`` that is not ASCII."""
    return offered.encode("utf-8", "surrogatepass")


def token_matches(request: Request, offered: str | None) -> bool:
    expected = admin_token(request)
    return expected is not None and offered is not None and hmac.compare_digest(expected, _as_bytes(offered))


def clean_actor(name: str | None, default: str) -> str:
    cleaned = _ACTOR.sub("", (name or "").strip())[:80]
    return cleaned or default


def require_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    """The API's check; returns the actor named in the audit log."""
    if admin_token(request) is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the admin API is disabled: set LEADRELAY_ADMIN_TOKEN")
    if credentials is None or not token_matches(request, credentials.credentials):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid admin bearer token is required",
            {"WWW-Authenticate": "Bearer"},
        )
    return "api:" + clean_actor(request.headers.get("x-leadrelay-actor"), "admin")


@dataclass(frozen=True, slots=True)
class WebSession:
    actor: str
    csrf: str


def _sign(key: bytes, payload: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, payload, hashlib.sha256).digest()).decode().rstrip("=")


def session_cookie(request: Request, actor: str) -> str:
    key = admin_token(request)
    assert key is not None
    payload = json.dumps({"actor": actor, "exp": int(time.time()) + SESSION_SECONDS}).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_sign(key, payload)}"


def web_session(request: Request) -> WebSession | None:
    key = admin_token(request)
    raw = request.cookies.get(SESSION_COOKIE)
    if key is None or not raw or "." not in raw:
        return None
    body, signature = raw.rsplit(".", 1)
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        data = json.loads(payload)
    except (ValueError, json.JSONDecodeError):
        return None
    if not hmac.compare_digest(_sign(key, payload).encode(), _as_bytes(signature)):
        return None
    if not isinstance(data, dict) or data.get("exp", 0) < time.time():
        return None
    return WebSession(actor=str(data.get("actor", "web")), csrf=_sign(key, b"csrf:" + payload))


def csrf_ok(session: WebSession, offered: str | None) -> bool:
    return bool(offered) and hmac.compare_digest(session.csrf.encode(), _as_bytes(offered or ""))
