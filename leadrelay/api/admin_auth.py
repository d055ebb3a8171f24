"""Who may use the admin API and page, and as whom (docs/admin.md).

Identities come from :mod:`leadrelay.api.admin_identity`: named tokens
(``LEADRELAY_ADMIN_USERS``, and ``LEADRELAY_ADMIN_TOKEN`` as the operator
``admin``) or a trusted SSO proxy's headers. No identity configured means the
admin surface is disabled. The audit actor is the identity's name, never a name
the client typed.

Roles: a ``viewer`` may look; only an ``operator`` may change anything. The API
checks it for every method but GET/HEAD/OPTIONS in :func:`require_token`, the page
in ``admin_web._acting``, the one helper every form post goes through.

The page keeps a server-side session: the cookie holds a random id, the ledger
its SHA-256 (``admin_sessions``) with the CSRF token. Logout deletes the row, so
the old cookie is refused; a session also ends when its user's token changes or
its SSO identity stops matching the proxy's headers.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import delete

from leadrelay.api.admin_identity import (
    OPERATOR,
    Identity,
    admin_enabled,
    by_name,
    by_sso,
    by_token,
    settings_of,
    token_users,
)
from leadrelay.db import transaction, utcnow
from leadrelay.models import AdminSession

SESSION_COOKIE = "leadrelay_admin"
SESSION_SECONDS = 8 * 3600  # the default of LEADRELAY_ADMIN_SESSION_SECONDS
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
VIEWER_REFUSED = "your role is viewer: you may look, but only an operator may replay, edit, discard or erase"
bearer = HTTPBearer(
    auto_error=False, description="an admin's token (LEADRELAY_ADMIN_USERS or LEADRELAY_ADMIN_TOKEN)"
)


def admin_token(request: Request) -> bytes | None:
    """``LEADRELAY_ADMIN_TOKEN`` as bytes (the operator ``admin``), or None."""
    token = settings_of(request).admin_token
    return token.get_secret_value().encode() if token is not None and token.get_secret_value() else None


def token_matches(request: Request, offered: str | None) -> bool:
    return by_token(request, offered) is not None


def require_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    """The API's check; returns the actor named in the audit log (``api:<user name>``).

    A viewer is refused (403) for every method that may change something.
    """
    if not token_users(request):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the admin API is disabled: set LEADRELAY_ADMIN_TOKEN or LEADRELAY_ADMIN_USERS",
        )
    identity = by_token(request, credentials.credentials) if credentials is not None else None
    if identity is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid admin bearer token is required",
            {"WWW-Authenticate": "Bearer"},
        )
    request.state.admin_identity = identity
    if request.method not in SAFE_METHODS and not identity.may_change:
        raise HTTPException(status.HTTP_403_FORBIDDEN, VIEWER_REFUSED)
    return "api:" + identity.name


@dataclass(frozen=True, slots=True)
class WebSession:
    actor: str  # web:<user name>: the audit log's actor
    csrf: str
    name: str = ""
    role: str = OPERATOR

    @property
    def may_change(self) -> bool:
        return self.role == OPERATOR


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def start_session(request: Request, identity: Identity) -> str:
    """A new session for ``identity``; returns the cookie's value (its id). Expired rows are swept."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = timedelta(seconds=settings_of(request).admin_session_seconds)
    with transaction(request.app.state.runtime.sessions) as db:
        db.execute(delete(AdminSession).where(AdminSession.expires_at < now))
        db.add(
            AdminSession(
                id_sha256=_hash(session_id),
                user_name=identity.name,
                via=identity.via,
                credential=identity.credential,
                csrf=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    return session_id


def end_session(request: Request) -> None:
    """Logout: the session's row is deleted, so its cookie is refused from now on."""
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        with transaction(request.app.state.runtime.sessions) as db:
            db.execute(delete(AdminSession).where(AdminSession.id_sha256 == _hash(raw)))
    request.state.admin_session = None


def _current(request: Request, row: AdminSession) -> Identity | None:
    """The session's identity as the configuration (or the SSO proxy) says now."""
    if row.via == "sso":
        sso = by_sso(request)
        return sso if sso is not None and sso.name == row.user_name else None
    return by_name(request, row.user_name, row.credential)


def _load(request: Request) -> WebSession | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw or len(raw) > 100 or not admin_enabled(request):
        return None
    with request.app.state.runtime.sessions() as db:
        row = db.get(AdminSession, _hash(raw))
        if row is None or row.expires_at <= utcnow():
            return None
        identity = _current(request, row)
        csrf = row.csrf
    if identity is None:
        return None
    return WebSession(actor="web:" + identity.name, csrf=csrf, name=identity.name, role=identity.role)


def web_session(request: Request) -> WebSession | None:
    """The page's logged-in session, looked up once per request."""
    if not hasattr(request.state, "admin_session"):
        request.state.admin_session = _load(request)
    found: WebSession | None = request.state.admin_session
    return found


def csrf_ok(session: WebSession, offered: str | None) -> bool:
    return bool(offered) and hmac.compare_digest(
        session.csrf.encode(), (offered or "").encode("utf-8", "surrogatepass")
    )
