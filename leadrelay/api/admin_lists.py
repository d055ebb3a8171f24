"""``/admin/leads``, ``/admin/dead-letters``, ``/admin/audit``: the page's searchable lists.

Filters come from the query string as typed; one that cannot be read is named on
the page and ignored. Pages are keyset-paged (``after`` = the last id shown), the
total is counted, not loaded, and ``export.csv`` beside each list streams every
matching row (the same filters) to a logged-in admin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadrelay.api.admin_web import SECURITY_HEADERS, _page, _session, _sessions
from leadrelay.api.csv_export import EXPORT_CAP, csv_response
from leadrelay.durations import parse_since
from leadrelay.ledger import audit_search, search
from leadrelay.ledger.audit_search import AuditCriteria
from leadrelay.ledger.search import Criteria, Page
from leadrelay.models import DeadLetterStatus, DeadReason, LeadState
from leadrelay.worker import dead_letters

router = APIRouter(prefix="/admin", include_in_schema=False)
BIG = 2**63 - 1
PAGE_SIZE = 100


@dataclass
class Typed:
    """The query string as typed, what could be read of it, and what could not."""

    values: dict[str, str]
    problems: list[str] = field(default_factory=list)

    def text(self, name: str) -> str | None:
        value = self.values.get(name, "").replace("\x00", "").strip()
        if len(value) > search.MAX_TEXT:
            self.problems.append(f"{name}: longer than {search.MAX_TEXT} characters")
            return None
        return value or None

    def number(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        if not value.isdecimal() or not 1 <= int(value) <= BIG:
            self.problems.append(f"{name}: {value!r} is not an id")
            return None
        return int(value)

    def choice(self, name: str, allowed: list[str]) -> str | None:
        value = self.text(name)
        if value is not None and value not in allowed:
            self.problems.append(f"{name}: {value!r} is not one of {', '.join(allowed)}")
            return None
        return value

    def when(self, name: str) -> datetime | None:
        try:
            return parse_since(self.text(name))
        except ValueError as err:
            self.problems.append(f"{name}: {err}")
            return None

    def after(self) -> int | None:
        return self.number("after")

    def query(self, **changes: object) -> str:
        """This query string with ``changes`` (a None drops the parameter)."""
        merged: dict[str, object] = {**self.values, **changes}
        return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def _typed(request: Request) -> Typed:
    return Typed({key: value for key, value in request.query_params.items()})


def lead_criteria(typed: Typed, channels: list[str]) -> Criteria:
    return Criteria(
        email=typed.text("email"),
        phone=typed.text("phone"),
        name=typed.text("name"),
        reference=typed.text("reference"),
        opportunity_id=typed.number("opportunity_id"),
        coworker_id=typed.number("coworker_id"),
        lead_id=typed.number("lead_id"),
        channel=typed.choice("channel", channels),
        state=typed.choice("state", [s.value for s in LeadState]),
        since=typed.when("since"),
        until=typed.when("until"),
    )


def letter_criteria(typed: Typed, channels: list[str]) -> Criteria:
    c = lead_criteria(typed, channels)
    typed.values.setdefault("status", "open")
    status = typed.choice("status", [*(s.value for s in DeadLetterStatus), "all"])
    reason = typed.choice("reason", [r.value for r in DeadReason])
    return replace(c, reason=reason, status=None if status in (None, "all") else status)


def audit_criteria(typed: Typed) -> AuditCriteria:
    return AuditCriteria(
        actor=typed.text("actor"),
        action=typed.text("action"),
        lead_id=typed.number("lead_id"),
        since=typed.when("since"),
        until=typed.when("until"),
    )


def _channels(request: Request) -> list[str]:
    return sorted(request.app.state.runtime.routing.channels)


async def _listing(
    request: Request,
    template: str,
    typed: Typed,
    load: Callable[[Session, int | None], tuple[Page[Any], int]],
    **context: Any,
) -> HTMLResponse:
    after = typed.after()
    with _sessions(request)() as session:
        page, total = await run_in_threadpool(load, session, after)
    return _page(
        request,
        template,
        rows=page.rows,
        total=total,
        typed=typed,
        problems=typed.problems,
        next_query=None if page.next_cursor is None else typed.query(after=page.next_cursor),
        first_query=None if after is None else typed.query(after=None),
        export_query=typed.query(after=None),
        export_path=f"{request.url.path}/export.csv",
        **context,
    )


def _export(
    request: Request, name: str, columns: tuple[str, ...], rows: Callable[[Session], Iterator[Any]]
) -> StreamingResponse:
    def produce() -> Iterator[Any]:
        with _sessions(request)() as session:
            yield from rows(session)

    return csv_response(name, columns, produce, SECURITY_HEADERS)


@router.get("/leads")
async def leads_page(request: Request) -> HTMLResponse:
    _session(request)
    typed = _typed(request)
    c = lead_criteria(typed, _channels(request))
    return await _listing(
        request,
        "leads.html",
        typed,
        lambda s, after: (
            search.find_leads(s, c, after=after, limit=PAGE_SIZE),
            search.count_leads(s, c),
        ),
        states=[s.value for s in LeadState],
        channels=_channels(request),
    )


@router.get("/leads/export.csv")
async def leads_export(request: Request) -> StreamingResponse:
    _session(request)
    c = lead_criteria(_typed(request), _channels(request))
    return _export(
        request,
        "leads.csv",
        search.LEAD_COLUMNS,
        lambda s: search.every_page(s, c, letters=False, cap=EXPORT_CAP),
    )


@router.get("/dead-letters")
async def dead_letters_page(request: Request) -> HTMLResponse:
    _session(request)
    typed = _typed(request)
    c = letter_criteria(typed, _channels(request))
    # "replay all matching" replays by channel, reason and time only: offered when nothing else narrows
    narrowed = [name for name, _ in c.described().items() if name not in ("channel", "reason", "since")]
    return await _listing(
        request,
        "dead_letters.html",
        typed,
        lambda s, after: (
            search.find_letters(s, c, after=after, limit=PAGE_SIZE),
            search.count_letters(s, c),
        ),
        criteria=c,
        bulk=narrowed == ["status"] and c.status == DeadLetterStatus.open,
        counts=await run_in_threadpool(_open_by_reason, request),
        states=[s.value for s in LeadState],
        channels=_channels(request),
        reasons=[r.value for r in DeadReason],
        statuses=[*(s.value for s in DeadLetterStatus), "all"],
    )


def _open_by_reason(request: Request) -> dict[str, int]:
    with _sessions(request)() as session:
        return dead_letters.counts(session)


@router.get("/dead-letters/export.csv")
async def dead_letters_export(request: Request) -> StreamingResponse:
    _session(request)
    c = letter_criteria(_typed(request), _channels(request))
    return _export(
        request,
        "dead-letters.csv",
        search.LETTER_COLUMNS,
        lambda s: search.every_page(s, c, letters=True, cap=EXPORT_CAP),
    )


@router.get("/audit")
async def audit_page(request: Request) -> HTMLResponse:
    _session(request)
    typed = _typed(request)
    c = audit_criteria(typed)
    return await _listing(
        request,
        "audit.html",
        typed,
        lambda s, after: (
            audit_search.find_audit(s, c, after=after, limit=PAGE_SIZE),
            audit_search.count_audit(s, c),
        ),
    )


@router.get("/audit/export.csv")
async def audit_export(request: Request) -> StreamingResponse:
    _session(request)
    c = audit_criteria(_typed(request))
    return _export(
        request,
        "audit.csv",
        audit_search.AUDIT_COLUMNS,
        lambda s: audit_search.every_entry(s, c, cap=EXPORT_CAP),
    )
