"""``/admin/api``: find leads, dead letters and audit entries; keyset pages; CSV exports.

Every list answers one page, newest first, with ``X-Total-Count`` (the number of
matching rows, counted, not loaded) and, when there is more, ``X-Next-Cursor`` and a
``Link: <…>; rel="next"`` header: the next page is the same request with ``after``
set to the cursor. ``…/export.csv`` streams every matching row (at most
:data:`~leadrelay.api.csv_export.EXPORT_CAP`) as CSV.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadrelay.api.admin_api import (
    TEXT,
    Actor,
    Channel,
    DateTime,
    DeadLetterOut,
    LeadOut,
    _one_value_each,
    _Out,
)
from leadrelay.api.admin_api import (
    router as admin_router,
)
from leadrelay.api.csv_export import EXPORT_CAP, csv_response
from leadrelay.ledger import audit_search, search
from leadrelay.ledger.audit_search import AuditCriteria
from leadrelay.ledger.search import Criteria, Page
from leadrelay.models import DeadLetterStatus, DeadReason, LeadState

T = TypeVar("T")
BIG = 2**63 - 1
router = APIRouter(
    prefix="/admin/api",
    tags=["admin"],
    dependencies=[Depends(_one_value_each)],
    responses=admin_router.responses,
)
Text = Annotated[str | None, Query(max_length=search.MAX_TEXT, pattern=TEXT)]
Number = Annotated[int | None, Query(ge=1, le=BIG)]
After = Annotated[int | None, Query(ge=1, le=BIG, description="the X-Next-Cursor of the page before")]
Limit = Annotated[int, Query(ge=1, le=search.MAX_PAGE)]
_PAGED = {
    "X-Total-Count": {"description": "how many rows match (all pages)", "schema": {"type": "integer"}},
    "X-Next-Cursor": {"description": "pass as `after` for the next page (absent on the last)"},
    "Link": {"description": 'the next page\'s URL, rel="next"'},
}


class LeadRowOut(LeadOut):
    name: str | None
    email: str | None
    phone: str | None
    account: str | None
    coworker_id: int | None


class DeadLetterRowOut(DeadLetterOut):
    name: str | None
    email: str | None
    resolved_by: str | None
    resolved_at: datetime | None


class AuditOut(_Out):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    result: str
    detail: dict[str, Any]


def lead_criteria(
    email: Text = None,
    phone: Text = None,
    name: Text = None,
    reference: Text = None,
    opportunity_id: Number = None,
    coworker_id: Number = None,
    lead_id: Number = None,
    channel: Channel = None,
    state: LeadState | None = None,
    since: DateTime | None = None,
    until: DateTime | None = None,
) -> Criteria:
    """The filters every lead and dead-letter list takes (all must hold)."""
    return Criteria(
        email=email,
        phone=phone,
        name=name,
        reference=reference,
        opportunity_id=opportunity_id,
        coworker_id=coworker_id,
        lead_id=lead_id,
        channel=channel,
        state=state,
        since=since,
        until=until,
    )


Leads = Annotated[Criteria, Depends(lead_criteria)]
Status = Annotated[
    DeadLetterStatus | Literal["all"], Query(alias="status", description="open by default; all for any")
]


def _letters(c: Criteria, reason: DeadReason | None, status: DeadLetterStatus | str) -> Criteria:
    return replace(c, reason=reason, status=None if status == "all" else status)


def audit_criteria(
    actor: Text = None,
    action: Text = None,
    lead_id: Number = None,
    since: DateTime | None = None,
    until: DateTime | None = None,
) -> AuditCriteria:
    return AuditCriteria(actor=actor, action=action, lead_id=lead_id, since=since, until=until)


Audit = Annotated[AuditCriteria, Depends(audit_criteria)]


def _read(request: Request, work: Callable[[Session], T]) -> T:
    with request.app.state.runtime.sessions() as session:
        return work(session)


def _paged(request: Request, response: Response, page: Page[Any], total: int) -> list[Any]:
    response.headers["X-Total-Count"] = str(total)
    if page.next_cursor is not None:
        response.headers["X-Next-Cursor"] = str(page.next_cursor)
        url = request.url.remove_query_params("after").include_query_params(after=page.next_cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return page.rows


def _streamed(request: Request, produce: Callable[[Session], Iterator[Any]]) -> Callable[[], Iterator[Any]]:
    def rows() -> Iterator[Any]:
        with request.app.state.runtime.sessions() as session:
            yield from produce(session)

    return rows


_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/leads", response_model=list[LeadRowOut], responses={200: {"headers": _PAGED}})
async def list_leads(
    request: Request, response: Response, _: Actor, c: Leads, after: After = None, limit: Limit = 50
) -> Any:
    """Leads matching every filter given, newest first, one page (see ``X-Next-Cursor``)."""

    def load(s: Session) -> tuple[Page[Any], int]:
        return search.find_leads(s, c, after=after, limit=limit), search.count_leads(s, c)

    page, total = await run_in_threadpool(_read, request, load)
    return _paged(request, response, page, total)


@router.get("/leads/export.csv", response_class=StreamingResponse)
async def export_leads(request: Request, _: Actor, c: Leads) -> StreamingResponse:
    """Every matching lead as CSV (newest first, at most 100,000 rows)."""
    rows = _streamed(request, lambda s: search.every_page(s, c, letters=False, cap=EXPORT_CAP))
    return csv_response("leads.csv", search.LEAD_COLUMNS, rows, _NO_STORE)


@router.get("/dead-letters", response_model=list[DeadLetterRowOut], responses={200: {"headers": _PAGED}})
async def list_dead_letters(
    request: Request,
    response: Response,
    _: Actor,
    c: Leads,
    reason: DeadReason | None = None,
    status_: Status = DeadLetterStatus.open,
    after: After = None,
    limit: Limit = 100,
) -> Any:
    """Dead letters matching every filter (``status`` open by default), newest first, one page."""
    chosen = _letters(c, reason, status_)

    def load(s: Session) -> tuple[Page[Any], int]:
        return search.find_letters(s, chosen, after=after, limit=limit), search.count_letters(s, chosen)

    page, total = await run_in_threadpool(_read, request, load)
    return _paged(request, response, page, total)


@router.get("/dead-letters/export.csv", response_class=StreamingResponse)
async def export_dead_letters(
    request: Request, _: Actor, c: Leads, reason: DeadReason | None = None, status_: Status = "all"
) -> StreamingResponse:
    """Every matching dead letter as CSV (any status unless ``status`` is given)."""
    chosen = _letters(c, reason, status_)
    rows = _streamed(request, lambda s: search.every_page(s, chosen, letters=True, cap=EXPORT_CAP))
    return csv_response("dead-letters.csv", search.LETTER_COLUMNS, rows, _NO_STORE)


@router.get("/audit", response_model=list[AuditOut], responses={200: {"headers": _PAGED}})
async def list_audit(
    request: Request, response: Response, _: Actor, c: Audit, after: After = None, limit: Limit = 50
) -> Any:
    """The audit log: who did what, newest first; ``actor`` and ``action`` match their start."""

    def load(s: Session) -> tuple[Page[Any], int]:
        return audit_search.find_audit(s, c, after=after, limit=limit), audit_search.count_audit(s, c)

    page, total = await run_in_threadpool(_read, request, load)
    return _paged(request, response, page, total)


@router.get("/audit/export.csv", response_class=StreamingResponse)
async def export_audit(request: Request, _: Actor, c: Audit) -> StreamingResponse:
    """Every matching audit entry as CSV (the detail as JSON text)."""
    rows = _streamed(request, lambda s: audit_search.every_entry(s, c, cap=EXPORT_CAP))
    return csv_response("audit.csv", audit_search.AUDIT_COLUMNS, rows, _NO_STORE)
