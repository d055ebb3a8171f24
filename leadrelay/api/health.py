"""Liveness and readiness.

``/healthz`` says the process answers. ``/readyz`` says leadrelay is doing its job:
the ledger and the broker answer, no Nexudus account's login is being refused,
the oldest undelivered lead has not waited longer than
``LEADRELAY_READY_MAX_BACKLOG_SECONDS`` and no more than
``LEADRELAY_READY_MAX_OPEN_DEAD_LETTERS`` dead letters are open. Each problem is
named in the 503's body (docs/runbook.md says what to do about it).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from leadrelay.runtime import Runtime
from leadrelay.vitals import Vitals, read_vitals
from worker.celery_app import app as celery_app

router = APIRouter()


class Liveness(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="ready or not_ready")
    problems: list[str] = Field(description="one line per failed check; empty when ready")
    checks: dict[str, Any] = Field(description="what each check found")


@router.get("/healthz", response_model=Liveness)
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _check_database(rt: Runtime) -> str | None:
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"database: {type(exc).__name__}"
    return None


def _check_broker() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"broker: {type(exc).__name__}"
    return None


def _vitals(rt: Runtime) -> Vitals | str:
    try:
        with rt.sessions() as session:
            return read_vitals(session, accounts=list(rt.routing.accounts))
    except Exception as exc:
        return f"database: cannot read the ledger ({type(exc).__name__})"


def _judge(rt: Runtime, vitals: Vitals, checks: dict[str, Any]) -> list[str]:
    settings = rt.settings
    problems = []
    age, letters = vitals.backlog_age(), vitals.open_dead_letter_count
    checks.update(backlog_seconds=round(age, 1), open_dead_letters=letters)
    checks["nexudus"] = {
        state.account: "ok" if state.ok else ("unknown" if state.ok is None else "refused")
        for state in vitals.auth
    }
    for state in vitals.failed_logins:
        problems.append(f"nexudus auth: account {state.account!r} login refused: {state.error}")
    limit = settings.ready_max_backlog_seconds
    if limit is not None and age > limit:
        problems.append(f"backlog: the oldest undelivered lead has waited {age:.0f}s (limit {limit}s)")
    most = settings.ready_max_open_dead_letters
    if most is not None and letters > most:
        problems.append(f"dead letters: {letters} open (limit {most})")
    return problems


def readiness(rt: Runtime) -> tuple[list[str], dict[str, Any]]:
    """Every problem that makes this deployment not ready, and what each check found."""
    database, broker = _check_database(rt), _check_broker()
    checks: dict[str, Any] = {"database": database or "ok", "broker": broker or "ok"}
    problems = [p for p in (database, broker) if p]
    if database is None:
        vitals = _vitals(rt)
        if isinstance(vitals, str):
            problems.append(vitals)
        else:
            problems.extend(_judge(rt, vitals, checks))
    return problems, checks


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> JSONResponse:
    """The ledger and broker answer, Nexudus logins work, the backlog and dead letters are in bounds."""
    problems, checks = await run_in_threadpool(readiness, request.app.state.runtime)
    body = {"status": "ready" if not problems else "not_ready", "problems": problems, "checks": checks}
    return JSONResponse(body, status_code=200 if not problems else 503)
