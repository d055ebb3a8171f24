"""``POST /api/token`` (OAuth2 password and refresh grants) and the check of every other call:
``Authorization: Bearer <access token>`` or HTTP Basic with the login itself."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from leadrelay.errors import Refused
from leadrelay.sandbox.envelopes import Record, json_response
from leadrelay.sandbox.options import TokenSettings
from leadrelay.sandbox.tenant import Tenant

TOKEN_PATH = "/api/token"  # noqa: S105 - a URL path, not a secret
_FORM = "application/x-www-form-urlencoded"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PURGE_ABOVE = 10_000


class GrantError(Refused):
    """Answered 400 ``{"error": "invalid_grant", "error_description": …}``."""


@dataclass(slots=True)
class _Grant:
    username: str
    expires_at: float


class TokenStore:
    """Issued access and refresh tokens; a refresh token works once (a new pair replaces it)."""

    def __init__(self, settings: TokenSettings) -> None:
        self.settings = settings
        self.access: dict[str, _Grant] = {}
        self.refresh: dict[str, _Grant] = {}

    def issue(self, username: str) -> Record:
        now = time.time()
        if len(self.access) > _PURGE_ABOVE:
            self._purge(now)
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.access[access] = _Grant(username, now + self.settings.expires_in)
        self.refresh[refresh] = _Grant(username, now + self.settings.refresh_expires_in)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.settings.expires_in,
            "refresh_token": refresh,
        }

    def redeem(self, refresh_token: str) -> str:
        """The login a refresh token was issued to; the token is used up."""
        grant = self.refresh.pop(refresh_token, None)
        if grant is None or grant.expires_at <= time.time():
            raise GrantError("The refresh token is invalid or has expired.")
        return grant.username

    def holder(self, access_token: str) -> str | None:
        grant = self.access.get(access_token)
        return grant.username if grant and grant.expires_at > time.time() else None

    def revoke_all(self) -> int:
        count = len(self.access) + len(self.refresh)
        self.access.clear()
        self.refresh.clear()
        return count

    def _purge(self, now: float) -> None:
        for store in (self.access, self.refresh):
            for token in [token for token, grant in store.items() if grant.expires_at <= now]:
                del store[token]


def _basic_login(credentials: str, tenants: dict[str, Tenant]) -> Tenant | None:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, _, password = decoded.partition(":")
    tenant = tenants.get(username)
    return tenant if tenant and hmac.compare_digest(tenant.spec.password, password) else None


def authenticate(header: str | None, tenants: dict[str, Tenant], tokens: TokenStore) -> Tenant | None:
    """The tenant an ``Authorization`` header proves, or None (401). Call with the state lock held."""
    scheme, _, credentials = (header or "").strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        return _basic_login(credentials.strip(), tenants)
    if scheme == "bearer":
        username = tokens.holder(credentials.strip())
        return tenants.get(username) if username else None
    return None


def password_grant(tenants: dict[str, Tenant], form: dict[str, str]) -> str:
    """The login the form proves, else GrantError."""
    tenant = tenants.get(form.get("username", ""))
    if tenant is None or not hmac.compare_digest(tenant.spec.password, form.get("password", "")):
        raise GrantError("The user name or password is incorrect.")
    if tenant.spec.totp is not None and form.get("totp") != tenant.spec.totp:
        raise GrantError("The two-factor authentication code is missing or incorrect.")
    return tenant.username


def _grant_failure(error: str, description: str | None = None) -> Response:
    body = {"error": error} | ({"error_description": description} if description else {})
    return json_response(body, 400, _NO_STORE)


async def read_form(request: Request) -> dict[str, str] | None:
    """The form-encoded body, or None when the body is not a form (e.g. JSON)."""
    if not request.headers.get("content-type", "").lower().startswith(_FORM):
        return None
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def token_answer(form: dict[str, str] | None, tenants: dict[str, Tenant], tokens: TokenStore) -> Response:
    """Answer a token request (call with the state lock held)."""
    grant_type = (form or {}).get("grant_type")
    if form is None or grant_type not in ("password", "refresh_token"):
        return _grant_failure("unsupported_grant_type")
    try:
        if grant_type == "password":
            username = password_grant(tenants, form)
        else:
            username = tokens.redeem(form.get("refresh_token", ""))
            if username not in tenants:
                raise GrantError("The refresh token is invalid or has expired.")
    except GrantError as error:
        return _grant_failure("invalid_grant", str(error))
    return json_response(tokens.issue(username), headers=_NO_STORE)
