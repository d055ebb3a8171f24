"""``/admin/dead-letters/{id}/edit``: fix a dead lead on the page, then replay it.

A form over the canonical lead (:mod:`leadrelay.api.lead_form`); the post goes to
:func:`leadrelay.worker.dead_letters.edit` — the edit-and-replay of the CLI and the
API, validated by the canonical model — in one unit of work, so a replay can never
create a second opportunity. A refused lead comes back with each problem next to
its field and every value as it was typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadrelay.api.admin_web import _acting, _back, _page, _routing, _session, _sessions
from leadrelay.api.lead_form import (
    GENERAL,
    SECTIONS,
    form_values,
    lead_from_form,
    problems_by_field,
    read_form,
)
from leadrelay.models import DeadLetterStatus
from leadrelay.routing import Routing
from leadrelay.worker import dead_letters
from leadrelay.worker.dead_letters import ActionRefused, InvalidLead, NotFound, Replayed
from leadrelay.worker.queue import unit_of_work

router = APIRouter(prefix="/admin", include_in_schema=False)


def _listings(routing: Routing, channel: str) -> list[tuple[str, str]]:
    """``(listing id, location)`` for every listing the routing file gives this channel."""
    return sorted(
        (listing, name)
        for name, loc in routing.locations.items()
        for listing in loc.listings.get(channel, ())
    )


def _form(
    request: Request,
    letter_id: int,
    values: dict[str, str] | None,
    problems: dict[str, list[str]],
    code: int = 200,
) -> HTMLResponse:
    routing = _routing(request)
    with _sessions(request)() as session:
        try:
            found = dead_letters.detail(session, letter_id)
            on_record = dead_letters.editable_lead(session, letter_id, routing=routing)
        except NotFound as err:
            return _page(request, "error.html", 404, title="Not found", message=str(err))
        return _page(
            request,
            "edit_lead.html",
            code,
            letter=found.letter,
            lead=found.lead,
            editable=found.letter.status == DeadLetterStatus.open,
            sections=SECTIONS,
            values=values if values is not None else form_values(on_record),
            problems=problems,
            general=problems.get(GENERAL, []),
            listings=_listings(routing, found.lead.channel),
        )


@router.get("/dead-letters/{letter_id}/edit")
async def edit_form(request: Request, letter_id: int) -> HTMLResponse:
    _session(request)
    return await run_in_threadpool(_form, request, letter_id, None, {})


def edit_from_form(
    session: Session, letter_id: int, values: Mapping[str, str], *, actor: str, routing: Routing
) -> Replayed:
    """The form's values over the lead on record, through the one edit-and-replay (not committed)."""
    on_record = dead_letters.editable_lead(session, letter_id, routing=routing)
    edited = lead_from_form(on_record, values)
    return dead_letters.edit(session, letter_id, edited, actor=actor, routing=routing)


def _edit(request: Request, letter_id: int, values: dict[str, str], actor: str) -> Replayed:
    with unit_of_work(request.app.state.runtime) as uow:
        result = edit_from_form(uow.session, letter_id, values, actor=actor, routing=_routing(request))
        if result.enqueue:
            uow.enqueue(result.lead_id)
    return result


@router.post("/dead-letters/{letter_id}/edit")
async def edit_and_replay(request: Request, letter_id: int, csrf: Annotated[str, Form()]) -> Response:
    session = _acting(request, csrf)
    if isinstance(session, Response):
        return session
    form: Any = await request.form()
    values, too_long = read_form(form)
    if too_long:
        return await run_in_threadpool(_form, request, letter_id, values, too_long, 422)
    try:
        result = await run_in_threadpool(_edit, request, letter_id, values, session.actor)
    except InvalidLead as err:
        return await run_in_threadpool(
            _form, request, letter_id, values, problems_by_field(err.problems), 422
        )
    except NotFound as err:
        return _page(request, "error.html", 404, title="Not found", message=str(err))
    except ActionRefused as err:
        return _back(f"/admin/dead-letters/{letter_id}", str(err))
    return _back(f"/admin/leads/{result.lead_id}", result.message)
