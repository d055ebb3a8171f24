"""``/admin/…``: the dead-letter queue and the leads for operators, server-rendered.

No JavaScript; every lead field is untrusted input and rendered through Jinja's
autoescaping; every form carries a CSRF token tied to the signed session.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadrelay import queries
from leadrelay.api import admin_inboxes
from leadrelay.api.admin_auth import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    WebSession,
    admin_token,
    clean_actor,
    csrf_ok,
    session_cookie,
    token_matches,
    web_session,
)
from leadrelay.db import utcnow
from leadrelay.durations import parse_since
from leadrelay.errors import Refused
from leadrelay.models import DeadLetterStatus, DeadReason, LeadState
from leadrelay.worker import dead_letters, introductions
from leadrelay.worker.dead_letters import ActionRefused, Filter, NotFound
from leadrelay.worker.introductions import describe
from leadrelay.worker.queue import unit_of_work

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parents[1] / "templates"))
router = APIRouter(prefix="/admin", include_in_schema=False)
T = TypeVar("T")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class LoginRequired(Refused):
    """No valid admin session: the page sends the browser to the login form."""


def _page(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("session", web_session(request))
    context.setdefault("notice", request.query_params.get("notice"))
    # a page that reloads itself says so, with a link to stop it (WCAG 2.2.1); the reload is
    # the HTTP Refresh header, so turning it off is a plain link and the page needs no script
    if request.query_params.get("refresh") == "off":
        context["refresh"] = None
    headers = dict(SECURITY_HEADERS)
    if context.get("refresh"):
        headers["Refresh"] = str(context["refresh"])
    return TEMPLATES.TemplateResponse(request, f"admin/{name}", context, status_code=code, headers=headers)


def _session(request: Request) -> WebSession:
    session = web_session(request)
    if session is None:
        raise LoginRequired()
    return session


def _back(url: str, notice: str | None = None) -> RedirectResponse:
    target = f"{url}?{urlencode({'notice': notice})}" if notice else url
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER, headers=SECURITY_HEADERS)


def _sessions(request: Request) -> Any:
    return request.app.state.runtime.sessions


def _routing(request: Request) -> Any:
    return request.app.state.runtime.routing


def _since(text: str | None) -> datetime | None:
    try:
        return parse_since(text)
    except ValueError:
        return None  # the page shows the filter as typed; an unreadable one filters nothing


def _acting(request: Request, csrf: str | None) -> WebSession | Response:
    """The logged-in session of a form post, or the page that says why not."""
    session = _session(request)
    if not csrf_ok(session, csrf):
        return _page(
            request, "error.html", 403, title="Form expired", message="Reload the page and try again."
        )
    return session


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


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    return _page(request, "login.html", disabled=admin_token(request) is None, session=None)


@router.post("/login")
async def login(request: Request, token: Annotated[str, Form()], name: Annotated[str, Form()]) -> Response:
    if admin_token(request) is None:
        return _page(request, "login.html", 403, disabled=True, session=None)
    if not token_matches(request, token):
        return _page(request, "login.html", 401, error="That token is not the admin token.", session=None)
    response = _back("/admin")
    response.set_cookie(
        SESSION_COOKIE,
        session_cookie(request, "web:" + clean_actor(name, "admin")),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=_over_https(request),
        path="/admin",
    )
    return response


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form()]) -> Response:
    session = _acting(request, csrf)
    if isinstance(session, Response):
        return session
    response = _back("/admin/login")
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response


@router.get("/dead-letters")
async def index(
    request: Request, channel: str | None = None, reason: str | None = None, since: str | None = None
) -> HTMLResponse:
    _session(request)
    status_ = request.query_params.get("status", "open")
    if status_ != "all" and status_ not in DeadLetterStatus.__members__:
        status_ = "open"
    chosen_status = None if status_ == "all" else DeadLetterStatus(status_)
    chosen_reason = DeadReason(reason) if reason is not None and reason in DeadReason.__members__ else None
    flt = Filter(
        channel=channel or None, reason=chosen_reason, since=_since(since), status=chosen_status, limit=200
    )

    def load(session: Any) -> dict[str, Any]:
        return {
            "rows": dead_letters.list_letters(session, flt),
            "counts": dead_letters.counts(session),
            "matching": len(dead_letters.matching_ids(session, flt)),
        }

    with _sessions(request)() as session:
        data = await run_in_threadpool(load, session)
    return _page(
        request,
        "index.html",
        **data,
        flt=flt,
        since=since,
        status=status_,
        channels=sorted(request.app.state.runtime.routing.channels),
        reasons=[r.value for r in DeadReason],
        statuses=[*(s.value for s in DeadLetterStatus), "all"],
    )


@router.get("/dead-letters/{letter_id}")
async def dead_letter_page(request: Request, letter_id: int) -> HTMLResponse:
    _session(request)
    with _sessions(request)() as session:
        try:
            found = await run_in_threadpool(dead_letters.detail, session, letter_id)
        except NotFound as err:
            return _page(request, "error.html", 404, title="Not found", message=str(err))
    return _page(
        request,
        "dead_letter.html",
        letter=found.letter,
        lead=found.lead,
        attempts=found.attempts,
        errors=found.letter.detail.get("errors") or [],
        canonical=found.canonical_json,
        raw=found.raw_text,
    )


def _act(request: Request, work: Callable[[Session], T]) -> T | str:
    """One action in its own unit of work: what it queued is published after the commit."""
    try:
        with unit_of_work(request.app.state.runtime) as uow:
            result = work(uow.session)
            if isinstance(result, dead_letters.Replayed) and result.enqueue:
                uow.enqueue(result.lead_id)
    except ActionRefused as err:
        return str(err)
    return result


@router.post("/dead-letters/{letter_id}/replay")
async def replay(request: Request, letter_id: int, csrf: Annotated[str, Form()]) -> Response:
    session = _acting(request, csrf)
    if isinstance(session, Response):
        return session
    result = await run_in_threadpool(
        _act,
        request,
        lambda s: dead_letters.replay(s, letter_id, actor=session.actor, routing=_routing(request)),
    )
    if isinstance(result, str):
        return _back(f"/admin/dead-letters/{letter_id}", result)
    if result.outcome == "refused":
        return _back(f"/admin/dead-letters/{letter_id}", result.message)
    return _back(f"/admin/leads/{result.lead_id}", result.message)


@router.post("/dead-letters/{letter_id}/discard")
async def discard(
    request: Request, letter_id: int, csrf: Annotated[str, Form()], why: Annotated[str, Form()]
) -> Response:
    session = _acting(request, csrf)
    if isinstance(session, Response):
        return session
    result = await run_in_threadpool(
        _act, request, lambda s: dead_letters.discard(s, letter_id, actor=session.actor, why=why)
    )
    return _back(f"/admin/dead-letters/{letter_id}", result if isinstance(result, str) else "Discarded.")


@router.post("/dead-letters/replay")
async def replay_matching(
    request: Request,
    csrf: Annotated[str, Form()],
    channel: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    since: Annotated[str, Form()] = "",
) -> Response:
    session = _acting(request, csrf)
    if isinstance(session, Response):
        return session
    flt = Filter(
        channel=channel or None,
        reason=DeadReason(reason) if reason in DeadReason.__members__ else None,
        since=_since(since),
    )
    with _sessions(request)() as db:
        ids = await run_in_threadpool(dead_letters.matching_ids, db, flt)
    queued = 0
    for letter_id in ids:
        result = await run_in_threadpool(
            _act,
            request,
            lambda s, i=letter_id: dead_letters.replay(s, i, actor=session.actor, routing=_routing(request)),
        )
        queued += isinstance(result, dead_letters.Replayed) and result.enqueue
    return _back("/admin/dead-letters", f"Replayed {queued} of {len(ids)} matching dead letters.")


@router.get("/introductions")
async def introductions_page(request: Request) -> HTMLResponse:
    _session(request)
    routing = _routing(request)
    hours = routing.defaults.rejection_window_hours
    with _sessions(request)() as session:
        rows, flags = await run_in_threadpool(
            lambda: (
                introductions.competing(session, rejection_hours=hours, include_expired=True),
                introductions.possible_duplicates(session),
            )
        )
    return _page(
        request,
        "introductions.html",
        rows=rows,
        flags=flags,
        hours=hours,
        routing=routing,
        describe=describe,
        now=utcnow(),
    )


@router.get("/inboxes")
async def inboxes_page(request: Request) -> HTMLResponse:
    _session(request)
    rows = await run_in_threadpool(admin_inboxes.inboxes, request.app.state.runtime)
    return _page(request, "inboxes.html", rows=rows, refresh=30)


@router.get("/leads")
async def leads_page(request: Request, state: str | None = None, channel: str | None = None) -> HTMLResponse:
    _session(request)
    chosen = state if state in LeadState.__members__ else None
    with _sessions(request)() as session:
        leads = await run_in_threadpool(
            lambda: queries.recent_leads(session, state=chosen, channel=channel or None, limit=200)
        )
    return _page(
        request,
        "leads.html",
        leads=leads,
        state=chosen,
        channel=channel,
        states=[s.value for s in LeadState],
        channels=sorted(request.app.state.runtime.routing.channels),
    )


async def login_required(request: Request, _exc: Exception) -> Response:
    return _back("/admin/login")
