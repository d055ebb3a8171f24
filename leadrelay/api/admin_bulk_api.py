"""``/admin/api/bulk-jobs``: bulk replay or discard of dead letters as a background job (bearer token).

``POST`` with ``dry_run`` answers what the action would do and changes nothing;
without it, it makes the job, puts it on the queue and answers 202 with the job;
``GET /admin/api/bulk-jobs/{id}`` answers its progress.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from leadrelay.api.admin_api import BODY_ANSWERS, TEXT, Actor, DateTime, Problem, _read
from leadrelay.api.admin_api import router as admin_router
from leadrelay.db import transaction
from leadrelay.models import BulkJob, DeadReason
from leadrelay.worker import bulk_jobs, dead_letters
from leadrelay.worker.dead_letters import Filter

router = APIRouter(prefix="/admin/api", tags=["admin"], dependencies=admin_router.dependencies)
JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the bulk job's id")]
_ANSWERS: dict[int | str, dict[str, Any]] = {
    **admin_router.responses,
    404: {"model": Problem, "description": "No such bulk job"},
    409: {"model": Problem, "description": "Refused: no selection, too large a one, or no reason to discard"},
}


class BulkJobIn(BaseModel):
    action: Literal["replay", "discard"]
    # at most 2**53 - 1: a JSON number above it is not read as the same integer everywhere
    letter_ids: list[Annotated[int, Field(ge=1, le=2**53 - 1)]] | None = Field(
        default=None,
        max_length=bulk_jobs.MAX_ITEMS,
        description="the dead letters to act on; without it, every open one matching the filters",
    )
    channel: str | None = Field(default=None, pattern=TEXT)
    reason: DeadReason | None = None
    since: DateTime | None = None
    why: str | None = Field(default=None, max_length=2000, pattern=TEXT, description="a discard's reason")
    dry_run: StrictBool = False


class Skipped(BaseModel):
    letter_id: int
    why: str


class BulkPreviewOut(BaseModel):
    action: str
    selected: int
    would: int = Field(description="how many the action would take now")
    by_reason: dict[str, int]
    skipped: list[Skipped] = Field(description="already settled, purged or missing: left alone")


class BulkJobOut(BaseModel):
    id: int
    action: str
    status: str = Field(description="queued, running or done")
    actor: str
    total: int
    done: int
    failed: int = Field(description="items the action refused (already settled, purged, missing)")
    problems: list[Skipped]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def job_out(job: BulkJob) -> BulkJobOut:
    return BulkJobOut(
        **{k: getattr(job, k) for k in ("id", "action", "status", "actor", "total", "done", "failed")},
        problems=[Skipped(**p) for p in job.problems],
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
    )


@router.post(
    "/bulk-jobs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BulkJobOut | BulkPreviewOut,
    responses={
        **_ANSWERS,
        **BODY_ANSWERS,
        200: {"model": BulkPreviewOut, "description": "The dry run: nothing changed"},
    },
)
async def create_bulk_job(request: Request, who: Actor, body: BulkJobIn) -> Any:
    """Replay or discard many dead letters in the background (``dry_run``: say what it would do)."""
    rt = request.app.state.runtime

    def chosen(session: Any) -> list[int]:
        if body.letter_ids is not None:
            return body.letter_ids
        flt = Filter(channel=body.channel, reason=body.reason, since=body.since)
        return dead_letters.matching_ids(session, flt)

    if body.dry_run:
        found = await run_in_threadpool(
            _read, request, lambda s: bulk_jobs.preview(s, body.action, chosen(s))
        )
        skipped = [Skipped(letter_id=i, why=why) for i, why in found.skipped]
        out = BulkPreviewOut(
            action=found.action,
            selected=found.selected,
            would=found.would,
            by_reason=found.by_reason,
            skipped=skipped,
        )
        return JSONResponse(out.model_dump(mode="json"))

    def make() -> BulkJobOut:
        with transaction(rt.sessions) as session:
            job = bulk_jobs.create(
                session, action=body.action, letter_ids=chosen(session), actor=who, why=body.why
            )
            out = job_out(job)
        bulk_jobs.send(out.id)  # after the commit; a lost message is sent again by the scheduler
        return out

    made = await run_in_threadpool(make)
    return JSONResponse(
        made.model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/admin/api/bulk-jobs/{made.id}"},
    )


@router.get("/bulk-jobs/{job_id:int}", response_model=BulkJobOut, responses=_ANSWERS)
async def get_bulk_job(request: Request, job_id: JobId, _: Actor) -> Any:
    """A bulk job's progress: ``done`` of ``total``, ``failed`` and the first refusals."""
    return await run_in_threadpool(_read, request, lambda s: job_out(bulk_jobs.status(s, job_id)))
