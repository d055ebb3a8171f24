"""Who an admin is: a named token from the configuration, or an SSO proxy's identity headers.

Tokens: ``LEADRELAY_ADMIN_USERS`` (``name:role:token``) and, for compatibility,
``LEADRELAY_ADMIN_TOKEN`` as one operator named ``admin``. An offered token is
compared with every configured one in constant time (no early exit).

SSO (``LEADRELAY_ADMIN_SSO``): oauth2-proxy's ``X-Forwarded-Email`` (else
``X-Forwarded-User``) or Cloudflare Access's ``Cf-Access-Authenticated-User-Email``,
believed only from an address in ``LEADRELAY_ADMIN_TRUSTED_PROXIES`` (the address
the receiver sees the request from), and only for a name that
``LEADRELAY_ADMIN_SSO_ROLES`` gives a role.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from ipaddress import ip_address, ip_network

import structlog
from fastapi import Request

from leadrelay.settings import AdminUser, Settings

log = structlog.get_logger(__name__)

OPERATOR = "operator"
VIEWER = "viewer"
SSO_HEADERS = {
    "oauth2-proxy": ("x-forwarded-email", "x-forwarded-user"),
    "cloudflare-access": ("cf-access-authenticated-user-email",),
}
_SSO_NAME = re.compile(r"[\w.@+-]{1,200}")


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    role: str  # viewer | operator
    via: str  # token | sso
    credential: str  # the token's SHA-256, or the SSO name: a session ends when it no longer matches

    @property
    def may_change(self) -> bool:
        return self.role == OPERATOR


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_users(request: Request) -> tuple[AdminUser, ...]:
    return settings_of(request).admin_identities()


def by_token(request: Request, offered: str | None) -> Identity | None:
    """The user whose token was offered; every configured token is compared (constant time)."""
    if not offered:
        return None
    given = offered.encode("utf-8", "surrogatepass")
    found = None
    for user in token_users(request):
        if hmac.compare_digest(user.token.get_secret_value().encode(), given):
            found = user
    if found is None:
        return None
    return Identity(found.name, found.role, "token", digest(found.token.get_secret_value()))


def by_name(request: Request, name: str, credential: str) -> Identity | None:
    """A token user as configured now, if its token is still the one it logged in with."""
    for user in token_users(request):
        token_digest = digest(user.token.get_secret_value())
        if user.name == name and hmac.compare_digest(token_digest, credential):
            return Identity(user.name, user.role, "token", token_digest)
    return None


def _trusted(settings: Settings, host: str | None) -> bool:
    if not host or not settings.admin_trusted_proxies:
        return False
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return any(address in ip_network(net, strict=False) for net in settings.admin_trusted_proxies)


def sso_role(settings: Settings, name: str) -> str | None:
    """The role ``LEADRELAY_ADMIN_SSO_ROLES`` gives ``name``: its exact entry, else its domain's."""
    exact, domain = None, None
    for entry in filter(None, (e.strip() for e in settings.admin_sso_roles.split(","))):
        who, _, role = entry.rpartition("=")
        who = who.strip().lower()
        if who == name.lower():
            exact = role.strip()
        elif who.startswith("*@") and name.lower().endswith(who[1:]):
            domain = role.strip()
    return exact or domain


def by_sso(request: Request) -> Identity | None:
    """The SSO proxy's user, when SSO is on, the request came from a trusted proxy and the user has a role."""
    settings = settings_of(request)
    if settings.admin_sso == "off":
        return None
    names = [request.headers.get(h, "").strip() for h in SSO_HEADERS[settings.admin_sso]]
    name = next((n for n in names if n), "")
    if not name:
        return None
    host = request.client.host if request.client else None
    if not _trusted(settings, host):
        log.warning("admin_sso_untrusted_source", source=host)
        return None
    role = sso_role(settings, name) if _SSO_NAME.fullmatch(name) else None
    if role is None:
        log.info("admin_sso_no_role")
        return None
    return Identity(name, role, "sso", name)


def admin_enabled(request: Request) -> bool:
    settings = settings_of(request)
    return bool(token_users(request)) or settings.admin_sso != "off"
