"""``/admin/door`` and ``/admin/api/door``: what the webhook door refused, and a test lead per channel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from leadrelay.api import admin_api, door_probe
from leadrelay.api.admin_api import TEXT, Actor, Problem
from leadrelay.api.admin_web import _acting, _back, _page, _session
from leadrelay.db import transaction
from leadrelay.intake import door_log
from leadrelay.ledger import audit

router = APIRouter(prefix="/admin", include_in_schema=False)
# the admin API's conventions: one value per query parameter, the same documented refusals
api_router = APIRouter(
    prefix="/admin/api",
    tags=["admin"],
    dependencies=admin_api.router.dependencies,
    responses=admin_api.router.responses,
)
_NO_CHANNEL: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No channel of that name accepts webhooks"}
}


def _channels(request: Request) -> list[dict[str, Any]]:
    routing = request.app.state.runtime.routing
    rows = []
    for name, door in sorted(request.app.state.doors.items()):
        adapter = routing.channels[name].adapter if name in routing.channels else None
        sample = door_probe.sample_for(name, adapter)
        rows.append({"name": name, "scheme": door.config.scheme, "sample": sample.name if sample else None})
    return rows


def _recent(request: Request, channel: str | None, limit: int) -> list[door_log.DoorRejection]:
    with request.app.state.runtime.sessions() as session:
        rows = door_log.recent(session, channel=channel or None, limit=limit)
        session.expunge_all()
        return list(rows)


@router.get("/door")
async def door_page(request: Request, channel: str | None = None) -> HTMLResponse:
    _session(request)
    chosen = channel[:100] if channel else None
    limit = request.app.state.runtime.settings.door_log_size
    rows = await run_in_threadpool(_recent, request, chosen, limit)
    return _page(request, "door.html", rows=rows, channel=chosen, channels=_channels(request))


async def _probe(request: Request, channel: str, actor: str) -> door_probe.Probe:
    door = request.app.state.doors.get(channel)
    if door is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no channel named {channel[:100]!r} accepts webhooks")
    rt = request.app.state.runtime
    adapter = rt.routing.channels[channel].adapter if channel in rt.routing.channels else None
    probe = await door_probe.send(door, adapter, rt.settings.test_lead_url or rt.settings.public_url)

    def record() -> None:
        with transaction(rt.sessions) as session:
            audit(
                session,
                actor=actor,
                action="door.test_lead",
                target=f"channel:{channel}",
                result=str(probe.status or "no answer"),
                detail={"lead_id": probe.lead_id, "duplicate": probe.duplicate, "message": probe.message},
            )

    await run_in_threadpool(record)
    return probe


@router.post("/door/{channel}/test")
async def send_test_lead(request: Request, channel: str, csrf: Annotated[str, Form()]) -> Response:
    """Operators only (``_acting``): sign the channel's sample and send it through the door."""
    session = _acting(request, csrf)
    if isinstance(session, Response):
        return session
    try:
        probe = await _probe(request, channel, session.actor)
    except HTTPException as err:
        return _page(request, "error.html", err.status_code, title="Not found", message=str(err.detail))
    return _back("/admin/door", f"Test lead for {channel}: {probe.status or 'no answer'}, {probe.message}.")


class RejectionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    channel: str
    status: int
    error: str
    message: str
    source: str | None
    headers: str
    body_sha256: str | None
    body_bytes: int | None


class ProbeOut(BaseModel):
    channel: str
    status: int | None
    lead_id: int | None
    duplicate: bool | None
    message: str


@api_router.get("/door", response_model=list[RejectionOut])
async def list_rejections(
    request: Request,
    _: Actor,
    channel: Annotated[str | None, Query(pattern=TEXT, max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Any:
    """Requests the door refused, newest first: headers without secrets, the body's digest, never the body."""
    return await run_in_threadpool(_recent, request, channel, limit)


@api_router.post("/door/{channel}/test", response_model=ProbeOut, responses=_NO_CHANNEL)
async def test_lead(request: Request, channel: str, who: Actor) -> Any:
    """Sign the channel's sample with its secret and send it through the door over HTTP (operators)."""
    probe = await _probe(request, channel, who)
    return ProbeOut(
        channel=probe.channel,
        status=probe.status,
        lead_id=probe.lead_id,
        duplicate=probe.duplicate,
        message=probe.message,
    )
