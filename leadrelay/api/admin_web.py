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

from leadrelay.api import admin_inboxes
from leadrelay.api.admin_auth import VIEWER_REFUSED, WebSession, csrf_ok, web_session
from leadrelay.db import utcnow
from leadrelay.durations import parse_since
from leadrelay.errors import Refused
from leadrelay.models import DeadReason
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
    """The logged-in operator of a form post, or the page that says why not.

    Every form that changes something goes through here: a viewer is refused (403).
    """
    session = _session(request)
    if not csrf_ok(session, csrf):
        return _page(
            request, "error.html", 403, title="Form expired", message="Reload the page and try again."
        )
    if not session.may_change:
        return _page(
            request, "error.html", 403, title="Not allowed", message=VIEWER_REFUSED.capitalize() + "."
        )
    return session


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


# /admin/leads, /admin/dead-letters and /admin/audit (search, pages, CSV): admin_lists.py


async def login_required(request: Request, _exc: Exception) -> Response:
    return _back("/admin/login")
