"""``/admin/bulk``: bulk replay or discard from the dead-letter list, previewed, then run as a job.

The list's checkboxes (or "all matching the filter") post to the preview, which
says what the action would do and changes nothing; its confirm button makes the
job (:mod:`leadrelay.worker.bulk_jobs`), which a worker runs in chunks; the job's
page shows its progress and refreshes itself with a Refresh header (no script).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from leadrelay.api.admin_web import _acting, _back, _page, _session, _sessions, _since
from leadrelay.db import transaction
from leadrelay.models import DeadReason
from leadrelay.worker import bulk_jobs, dead_letters
from leadrelay.worker.bulk_jobs import JobNotFound
from leadrelay.worker.dead_letters import ActionRefused, Filter

router = APIRouter(prefix="/admin", include_in_schema=False)
REFRESH_SECONDS = 2
SHOWN_SKIPPED = 50


def _ids(values: list[str]) -> list[int]:
    """Letter ids as the form sent them (checkboxes, or one comma-separated field); junk is dropped."""
    found: list[int] = []
    for value in values:
        found.extend(int(part) for part in value.split(",") if part.strip().isdigit() and len(part) < 19)
    return found


def _filter(form: Any) -> Filter:
    reason = str(form.get("reason") or "")
    return Filter(
        channel=str(form.get("channel") or "") or None,
        reason=DeadReason(reason) if reason in DeadReason.__members__ else None,
        since=_since(str(form.get("since") or "")),
    )


@router.post("/bulk/preview")
async def bulk_preview(request: Request, csrf: Annotated[str, Form()]) -> Response:
    session = _acting(request, csrf)
    if isinstance(session, Response):
        return session
    form: Any = await request.form()
    action = str(form.get("action") or "replay")
    why = str(form.get("why") or "").strip()[:2000]
    every = form.get("all_matching") == "1"

    def look(db: Any) -> bulk_jobs.Preview:
        ids = dead_letters.matching_ids(db, _filter(form)) if every else _ids(form.getlist("ids"))
        return bulk_jobs.preview(db, action, ids)

    with _sessions(request)() as db:
        try:
            found = await run_in_threadpool(look, db)
        except ActionRefused as err:
            return _back("/admin", str(err))
    problem = None
    if action == "discard" and not why:
        problem = "Say why these dead letters are discarded: it goes into the audit log."
    return _page(
        request,
        "bulk_preview.html",
        422 if problem else 200,
        preview=found,
        why=why,
        why_problem=problem,
        skipped=found.skipped[:SHOWN_SKIPPED],
        ids=",".join(str(i) for i in found.letter_ids),
    )


@router.post("/bulk-jobs")
async def bulk_start(
    request: Request,
    csrf: Annotated[str, Form()],
    action: Annotated[str, Form()],
    ids: Annotated[str, Form()],
    why: Annotated[str, Form()] = "",
) -> Response:
    session = _acting(request, csrf)
    if isinstance(session, Response):
        return session

    def make() -> int:
        with transaction(request.app.state.runtime.sessions) as db:
            job = bulk_jobs.create(db, action=action, letter_ids=_ids([ids]), actor=session.actor, why=why)
            job_id = job.id
        bulk_jobs.send(job_id)  # after the commit; a lost message is sent again by the scheduler
        return job_id

    try:
        job_id = await run_in_threadpool(make)
    except ActionRefused as err:
        return _back("/admin", str(err))
    return _back(f"/admin/bulk-jobs/{job_id}", f"Bulk {action} of {len(_ids([ids]))} dead letters started.")


@router.get("/bulk-jobs/{job_id}")
async def bulk_job_page(request: Request, job_id: int) -> HTMLResponse:
    _session(request)
    with _sessions(request)() as db:
        try:
            job = await run_in_threadpool(bulk_jobs.status, db, job_id)
        except JobNotFound as err:
            return _page(request, "error.html", 404, title="Not found", message=str(err))
        return _page(
            request, "bulk_job.html", job=job, refresh=None if job.status == "done" else REFRESH_SECONDS
        )
