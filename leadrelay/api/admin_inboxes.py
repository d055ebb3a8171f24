"""``GET /admin/api/inboxes`` and what the admin's Inboxes page shows: each configured
inbox's state (ok, failing, stale, never polled), last poll, last error, UIDVALIDITY
and counts, from the ledger (leadrelay/inbox_health.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from leadrelay.api import admin_api
from leadrelay.api.admin_api import Actor
from leadrelay.inbox_health import InboxHealth, State, intervals, read_inbox_health
from leadrelay.runtime import Runtime

# the admin API's answers and checks (bearer token, one value per query parameter)
router = APIRouter(
    prefix="/admin/api",
    tags=["admin"],
    dependencies=admin_api.router.dependencies,
    responses=admin_api.router.responses,
)


class InboxOut(BaseModel):
    name: str
    state: State = Field(description="ok, failing, stale (not read for N poll intervals) or never polled")
    host: str
    folder: str
    auth: str = Field(description="password or oauth2")
    poll_interval_seconds: float
    polling: bool = Field(description="a poll pass holds the inbox now")
    last_poll_at: datetime | None = Field(description="the last pass's end, whatever its outcome")
    last_success_at: datetime | None
    failing_since: datetime | None
    consecutive_failures: int
    error_kind: str | None = Field(description="auth, consent, folder, tls, timeout, network, server, config")
    last_error: str | None = Field(description="one line for an operator (docs/runbook.md)")
    uidvalidity: int | None
    last_uid: int
    messages_imported: int


def inbox_health(rt: Runtime) -> list[InboxHealth]:
    with rt.sessions() as session:
        return read_inbox_health(
            session, intervals(rt.routing), stale_intervals=rt.settings.inbox_stale_intervals
        )


def describe(rt: Runtime, health: InboxHealth) -> InboxOut:
    config = rt.routing.inboxes[health.inbox]
    return InboxOut(
        name=health.inbox,
        state=health.state,
        host=f"{config.host}:{config.port}",
        folder=config.folder,
        auth="oauth2" if config.oauth2 else "password",
        poll_interval_seconds=health.interval,
        polling=health.polling,
        last_poll_at=health.polled_at,
        last_success_at=health.last_ok_at,
        failing_since=health.failing_since,
        consecutive_failures=health.failures,
        error_kind=health.error_kind,
        last_error=health.last_error,
        uidvalidity=health.uidvalidity,
        last_uid=health.last_uid,
        messages_imported=health.imported,
    )


def inboxes(rt: Runtime) -> list[InboxOut]:
    return [describe(rt, health) for health in inbox_health(rt)]


@router.get("/inboxes", response_model=list[InboxOut])
async def list_inboxes(request: Request, _: Actor) -> Any:
    """Every configured inbox: is it being read, when it last was, and why not."""
    return await run_in_threadpool(inboxes, request.app.state.runtime)
