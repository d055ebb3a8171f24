"""``/admin/login`` and ``/admin/logout``: a named admin's session, rate-limited logins.

A token login names its user by the token (the optional user name must be the
token's owner's: failures are then counted for that name too). Behind a trusted
SSO proxy, visiting the login page starts the session of the proxy's user.
Failed logins are counted per source address and per user name
(:mod:`leadrelay.api.login_limits`): past the limit, 429 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from leadrelay.api import login_limits
from leadrelay.api.admin_auth import SESSION_COOKIE, csrf_ok, end_session, start_session
from leadrelay.api.admin_identity import Identity, admin_enabled, by_sso, by_token, settings_of
from leadrelay.api.admin_web import _back, _page, _session
from leadrelay.db import transaction

router = APIRouter(prefix="/admin", include_in_schema=False)
log = structlog.get_logger(__name__)
REFUSED = "That user name and token do not belong to an admin."


def _nearest(request: Request, header: str) -> str:
    """A proxy header's first element: the one the proxy nearest the browser wrote."""
    return request.headers.get(header, "").split(",")[0].strip()


def _proto_in(forwarded: str) -> str:
    """``proto`` of one ``Forwarded`` element (``for=198.51.100.7;proto=https``)."""
    for pair in forwarded.split(";"):
        name, _, value = pair.partition("=")
        if name.strip().lower() == "proto":
            return value.strip().strip('"')
    return ""


def _over_https(request: Request) -> bool:
    """HTTPS as the browser sees it: here, or at a TLS proxy that says so.

    uvicorn believes ``X-Forwarded-Proto`` only from the addresses it is told to
    trust, and ``Forwarded`` never. Believing either here is safe: at worst it
    makes the cookie stricter than it had to be.
    """
    said = (
        request.url.scheme,
        _nearest(request, "x-forwarded-proto"),
        _proto_in(_nearest(request, "forwarded")),
    )
    return any(scheme.lower() == "https" for scheme in said)


async def _logged_in(request: Request, identity: Identity) -> Response:
    session_id = await run_in_threadpool(start_session, request, identity)
    log.info("admin_login", user=identity.name, role=identity.role, via=identity.via)
    response = _back("/admin")
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=settings_of(request).admin_session_seconds,
        httponly=True,
        samesite="strict",
        secure=_over_https(request),
        path="/admin",
    )
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    sso = by_sso(request)
    if sso is not None:  # the proxy vouches for the browser's user: no form to fill in
        return await _logged_in(request, sso)
    return _page(request, "login.html", disabled=not admin_enabled(request), session=None)


def _check(request: Request, token: str, user: str) -> Identity | int | None:
    """The identity, or the seconds to wait (rate limited), or None (refused, counted)."""
    settings = settings_of(request)
    keys = login_limits.keys(request.client.host if request.client else None, user.strip() or None)
    window = settings.admin_login_window_seconds
    with transaction(request.app.state.runtime.sessions) as db:
        wait = login_limits.retry_after(
            db, keys, attempts=settings.admin_login_attempts, window_seconds=window
        )
        if wait is not None:
            return wait
        identity = by_token(request, token)
        if identity is not None and (not user.strip() or user.strip() == identity.name):
            return identity
        login_limits.record_failure(db, keys, window_seconds=window)
    return None


@router.post("/login")
async def login(
    request: Request, token: Annotated[str, Form()], user: Annotated[str, Form()] = ""
) -> Response:
    if not admin_enabled(request):
        return _page(request, "login.html", 403, disabled=True, session=None)
    found = await run_in_threadpool(_check, request, token, user[:200])
    if isinstance(found, Identity):
        return await _logged_in(request, found)
    if isinstance(found, int):
        log.warning("admin_login_limited", retry_after=found)
        page = _page(
            request,
            "login.html",
            429,
            error=f"Too many failed logins: try again in {found} seconds.",
            session=None,
        )
        page.headers["Retry-After"] = str(found)
        return page
    log.warning("admin_login_refused")
    return _page(request, "login.html", 401, error=REFUSED, session=None)


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form()]) -> Response:
    """Any role may log out: the session's row is deleted, the old cookie is refused from now on."""
    session = _session(request)
    if not csrf_ok(session, csrf):
        return _page(
            request, "error.html", 403, title="Form expired", message="Reload the page and try again."
        )
    await run_in_threadpool(end_session, request)
    response = _back("/admin/login")
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response
