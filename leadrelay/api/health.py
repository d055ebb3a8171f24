"""Liveness and readiness.

``/healthz`` says the process answers. ``/readyz`` says leadrelay is doing its job:
the ledger and the broker answer, every secret the routing names can be resolved
(the light ``leadrelay check``; a full one run in this process is shown too), no
Nexudus account's login is being refused, a
scheduler has swept the ledger within ``LEADRELAY_READY_MAX_SCHEDULER_LAG_SECONDS``,
every inbox has been read within ``LEADRELAY_INBOX_STALE_INTERVALS`` poll intervals,
the oldest undelivered lead has not waited longer than
``LEADRELAY_READY_MAX_BACKLOG_SECONDS`` and no more than
``LEADRELAY_READY_MAX_OPEN_DEAD_LETTERS`` dead letters are open. docs/runbook.md
says what to do about each problem.

``/readyz`` is public, so it is cheap and tells strangers little:

* a receiver process works the answer out at most once per
  ``LEADRELAY_READY_CACHE_SECONDS``; callers arriving meanwhile share that one
  computation, which runs under a thread limiter of its own, so a flood of probes
  never takes a thread the webhook door needs;
* an anonymous caller learns the status and the kind of each problem
  (``database``, ``broker``, ``config``, ``nexudus auth``, ``inbox``, ``scheduler``,
  ``backlog``, ``dead letters``); the admin bearer token adds each problem's detail — account
  names, Nexudus's error text, which scheduler swept last — and what every check found.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, Field
from sqlalchemy import text

from leadrelay.api.admin_auth import token_matches
from leadrelay.config_check import CheckReport, remembered, routing_problems
from leadrelay.runtime import Runtime
from leadrelay.settings import Settings
from leadrelay.vitals import Vitals, runtime_vitals
from leadrelay.worker.celery_app import app as celery_app

router = APIRouter()


class Liveness(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="ready or not_ready")
    problems: list[str] = Field(
        description="one per failed check: its kind, followed by its detail for admin callers"
    )
    checks: dict[str, Any] = Field(description="what each check found (admin callers; empty for others)")


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    detail: str

    def line(self, *, detailed: bool) -> str:
        return f"{self.kind}: {self.detail}" if detailed else self.kind


@dataclass(frozen=True, slots=True)
class Report:
    problems: list[Problem]
    checks: dict[str, Any]

    @property
    def ready(self) -> bool:
        return not self.problems

    def body(self, *, detailed: bool) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not_ready",
            "problems": list(dict.fromkeys(problem.line(detailed=detailed) for problem in self.problems)),
            "checks": self.checks if detailed else {},
        }


@router.get("/healthz", response_model=Liveness)
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _check_database(rt: Runtime) -> Problem | None:
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return Problem("database", type(exc).__name__)
    return None


def _check_broker() -> Problem | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return Problem("broker", type(exc).__name__)
    return None


def _vitals(rt: Runtime) -> Vitals | Problem:
    try:
        with rt.sessions() as session:
            return runtime_vitals(session, rt)
    except Exception as exc:
        return Problem("database", f"cannot read the ledger ({type(exc).__name__})")


def _scheduler(settings: Settings, vitals: Vitals, checks: dict[str, Any]) -> Problem | None:
    swept = vitals.swept
    checks["scheduler"] = {
        "last_sweep_seconds": round(swept.age, 1) if swept else None,
        "last_sweep_by": swept.by if swept else None,
    }
    limit = settings.ready_max_scheduler_lag_seconds
    if limit is None:
        return None
    if swept is None:
        return Problem("scheduler", "no scheduler has swept the ledger yet (no worker, no `leadrelay beat`)")
    if swept.age > limit:
        return Problem(
            "scheduler",
            f"no scheduler has swept the ledger for {swept.age:.0f}s (limit {limit}s); "
            f"the last was {swept.by}",
        )
    return None


def _judge(settings: Settings, vitals: Vitals, checks: dict[str, Any]) -> list[Problem]:
    problems = []
    age, letters = vitals.backlog_age(), vitals.open_dead_letter_count
    checks.update(backlog_seconds=round(age, 1), open_dead_letters=letters)
    checks["nexudus"] = {
        state.account: "ok" if state.ok else ("unknown" if state.ok is None else "refused")
        for state in vitals.auth
    }
    for state in vitals.failed_logins:
        problems.append(Problem("nexudus auth", f"account {state.account!r} login refused: {state.error}"))
    checks["inboxes"] = {health.inbox: health.state for health in vitals.inboxes}
    for health in vitals.inboxes:
        if health.stale:
            problems.append(Problem("inbox", health.summary()))
    scheduler = _scheduler(settings, vitals, checks)
    if scheduler is not None:
        problems.append(scheduler)
    limit = settings.ready_max_backlog_seconds
    if limit is not None and age > limit:
        problems.append(
            Problem("backlog", f"the oldest undelivered lead has waited {age:.0f}s (limit {limit}s)")
        )
    most = settings.ready_max_open_dead_letters
    if most is not None and letters > most:
        problems.append(Problem("dead letters", f"{letters} open (limit {most})"))
    return problems


def _check_config(rt: Runtime, checks: dict[str, Any]) -> Problem | None:
    """The light check of the routing in use (no network), and this process's last full check."""
    report = CheckReport("light", routing_problems(rt.routing))
    checks["config"] = {form: r.summary() for form, r in {**remembered(), "light": report}.items()}
    if report.ok:
        return None
    more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
    return Problem("config", f"{report.problems[0]}{more}: run `leadrelay check`")


def readiness(rt: Runtime) -> Report:
    """Every problem that makes this deployment not ready, and what each check found."""
    database, broker = _check_database(rt), _check_broker()
    checks: dict[str, Any] = {
        "database": database.detail if database else "ok",
        "broker": broker.detail if broker else "ok",
    }
    problems = [p for p in (database, broker, _check_config(rt, checks)) if p]
    if database is None:
        vitals = _vitals(rt)
        if isinstance(vitals, Problem):
            problems.append(vitals)
        else:
            problems.extend(_judge(rt.settings, vitals, checks))
    return Report(problems, checks)


class ReadinessCache:
    """The last report, kept ``ready_cache_seconds``; worked out by one caller's request at a time."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._limiter = CapacityLimiter(1)  # its own: never a token of the default thread limiter
        self._report: Report | None = None
        self._at = float("-inf")
        self._computing: asyncio.Future[Report] | None = None

    async def report(self) -> Report:
        fresh = time.monotonic() - self._at < self._rt.settings.ready_cache_seconds
        if self._report is not None and fresh:
            return self._report
        if self._computing is None:
            self._computing = asyncio.ensure_future(self._compute())
        # shielded: a caller that goes away does not cancel the others' answer
        return await asyncio.shield(self._computing)

    async def _compute(self) -> Report:
        try:
            report = await to_thread.run_sync(readiness, self._rt, limiter=self._limiter)
            self._report, self._at = report, time.monotonic()
            return report
        finally:
            self._computing = None


def _cache(request: Request) -> ReadinessCache:
    state = request.app.state
    cache: ReadinessCache | None = getattr(state, "readiness", None)
    if cache is None:
        cache = state.readiness = ReadinessCache(state.runtime)
    return cache


def _from_an_admin(request: Request) -> bool:
    # read by hand, not as a declared security dependency: the token is optional here,
    # and the OpenAPI must not tell clients that /readyz requires it
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    return scheme.lower() == "bearer" and token_matches(request, token)


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> JSONResponse:
    """Ledger, broker, Nexudus logins, inboxes, scheduler, backlog, dead letters; details for admins."""
    report = await _cache(request).report()
    detailed = _from_an_admin(request)
    return JSONResponse(report.body(detailed=detailed), status_code=200 if report.ready else 503)
