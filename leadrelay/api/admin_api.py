"""``/admin/api``: the dead-letter queue and recent leads as JSON (bearer token)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadrelay import errors, queries
from leadrelay.api.admin_auth import bearer, require_token
from leadrelay.api.limits import LIMIT_RESPONSES
from leadrelay.durations import in_utc
from leadrelay.models import DeadReason
from leadrelay.worker import dead_letters, introductions
from leadrelay.worker.dead_letters import Filter, Replayed
from leadrelay.worker.queue import unit_of_work

T = TypeVar("T")


def actor(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    return require_token(request, credentials)


Actor = Annotated[str, Depends(actor)]


class Problem(BaseModel):
    """What FastAPI answers for a refused request: one line for a person."""

    detail: str


def _one_value_each(request: Request) -> None:
    """A query parameter given twice is ambiguous (which filter?): refuse it rather than pick one."""
    keys = [key for key, _ in request.query_params.multi_items()]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise RequestValidationError(
            [{"type": "repeated", "loc": ("query", key), "msg": "given more than once"} for key in repeated]
        )


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such record"}}
_REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "Refused: it could deliver twice, or the lead is not valid"}
}
BODY_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not JSON"}
}
router = APIRouter(
    prefix="/admin/api",
    tags=["admin"],
    dependencies=[Depends(_one_value_each)],
    responses={
        401: {"model": Problem, "description": "Missing or wrong bearer token"},
        403: {"model": Problem, "description": "The admin API is disabled (no LEADRELAY_ADMIN_TOKEN)"},
        **LIMIT_RESPONSES,
    },
)
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.IGNORECASE)


def _rfc3339(value: object) -> object:
    """A date-time as documented, with its offset: not the Unix seconds or bare dates pydantic also takes."""
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError("expected a date-time with an offset, e.g. 2026-11-27T12:00:00Z")


DateTime = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(in_utc)]
TEXT = r"^[^\x00]*$"  # Postgres text cannot hold U+0000: refused with 422, not a 500 from the database
Channel = Annotated[str | None, Query(pattern=TEXT)]
# a ledger id (BIGINT): a larger number is refused with 422 instead of failing in the database
LetterId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the dead letter's id")]
LeadId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the lead's id")]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class DeadLetterOut(_Out):
    id: int
    lead_id: int
    channel: str
    reason: str
    message: str
    status: str
    created_at: datetime
    external_id: str | None
    attempts: int


class AttemptOut(_Out):
    started_at: datetime
    finished_at: datetime | None
    call: str
    status_code: int | None
    outcome: str | None
    error: str | None
    response: str | None


class LeadOut(_Out):
    id: int
    channel: str
    source: str
    state: str
    received_at: datetime
    external_id: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    duplicate_of: int | None
    opportunity_id: int | None
    opportunity_name: str | None
    delivered_at: datetime | None


class DeadLetterDetailOut(DeadLetterOut):
    detail: dict[str, Any]
    resolution: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    lead: LeadOut
    canonical_lead: dict[str, Any] | None
    raw: str = Field(description="the raw input as received (UTF-8, undecodable bytes replaced)")
    delivery_attempts: list[AttemptOut]


class LeadDetailOut(LeadOut):
    canonical_lead: dict[str, Any] | None
    raw: str
    delivery_attempts: list[AttemptOut]
    dead_letter_ids: list[int]


class ReplayOut(BaseModel):
    letter_id: int
    lead_id: int
    outcome: str = Field(description="queued, duplicate, refused or would_replay")
    message: str


class BulkReplayIn(BaseModel):
    channel: str | None = Field(default=None, pattern=TEXT)
    reason: DeadReason | None = None
    since: DateTime | None = None
    dry_run: StrictBool = False


class BulkReplayOut(BaseModel):
    matched: int
    results: list[ReplayOut]


class DiscardIn(BaseModel):
    why: str = Field(min_length=1, max_length=2000, pattern=TEXT)


def _sessions(request: Request) -> Any:
    return request.app.state.runtime.sessions


def _routing(request: Request) -> Any:
    return request.app.state.runtime.routing


def _read(request: Request, work: Callable[[Session], T]) -> T:
    with _sessions(request)() as session:
        return work(session)


def _write(request: Request, work: Callable[[Session], Replayed]) -> Replayed:
    """One action in its own unit of work: what it queued is published after the commit.

    A refusal rolls it back and answers 409 (404 for a missing record): :func:`answer_refusal`.
    """
    with unit_of_work(request.app.state.runtime) as uow:
        result = work(uow.session)
        if result.enqueue:
            uow.enqueue(result.lead_id)
    return result


async def answer_refusal(request: Request, exc: Exception) -> JSONResponse:
    """The app's answer to a :class:`~leadrelay.errors.Refused` or ``NotFound`` nothing else caught."""
    code = status.HTTP_404_NOT_FOUND if isinstance(exc, errors.NotFound) else status.HTTP_409_CONFLICT
    return JSONResponse({"detail": str(exc)}, status_code=code)


def _raw(body: bytes | None) -> str:
    return "(purged by the retention policy)" if body is None else body.decode("utf-8", errors="replace")


# The lists (filters, keyset pages, CSV) are in admin_search.py.


@router.get("/dead-letters/{letter_id:int}", response_model=DeadLetterDetailOut, responses=_NOT_FOUND)
async def get_dead_letter(request: Request, letter_id: LetterId, _: Actor) -> Any:
    """Why it died, every attempt, the canonical lead and the raw input."""

    def load(session: Session) -> dict[str, Any]:
        found = dead_letters.detail(session, letter_id)
        letter, lead = found.letter, found.lead
        return {
            **{k: getattr(letter, k) for k in ("id", "lead_id", "reason", "message", "status", "created_at")},
            **{k: getattr(letter, k) for k in ("detail", "resolution", "resolved_by", "resolved_at")},
            "channel": lead.channel,
            "external_id": lead.external_id,
            "attempts": lead.attempts,
            "lead": LeadOut.model_validate(lead),
            "canonical_lead": lead.lead,
            "raw": _raw(lead.raw_body),
            "delivery_attempts": [AttemptOut.model_validate(a) for a in found.attempts],
        }

    return await run_in_threadpool(_read, request, load)


@router.post(
    "/dead-letters/{letter_id:int}/replay", response_model=ReplayOut, responses=_NOT_FOUND | _REFUSED
)
async def replay_dead_letter(request: Request, letter_id: LetterId, who: Actor) -> Any:
    """Send one dead letter through again (refused with 409 when that could duplicate)."""
    result = await run_in_threadpool(
        _write, request, lambda s: dead_letters.replay(s, letter_id, actor=who, routing=_routing(request))
    )
    if result.outcome == "refused":
        raise HTTPException(status.HTTP_409_CONFLICT, result.message)
    return _replay_out(result)


def _replay_out(result: Replayed) -> ReplayOut:
    return ReplayOut(
        letter_id=result.letter_id, lead_id=result.lead_id, outcome=result.outcome, message=result.message
    )


@router.post("/dead-letters/replay", response_model=BulkReplayOut, responses=BODY_ANSWERS)
async def replay_matching(request: Request, who: Actor, body: BulkReplayIn) -> Any:
    """Replay every open dead letter matching the filters (``dry_run`` to preview)."""
    flt = Filter(channel=body.channel, reason=body.reason, since=body.since)
    ids = await run_in_threadpool(_read, request, lambda s: dead_letters.matching_ids(s, flt))

    def replay_each() -> Iterator[Replayed]:
        for letter_id in ids:

            def replay_one(s: Session, i: int = letter_id) -> Replayed:
                return dead_letters.replay(s, i, actor=who, routing=_routing(request), dry_run=body.dry_run)

            try:
                yield _write(request, replay_one)
            except errors.Refused as err:
                yield Replayed(letter_id, 0, "refused", str(err))

    results = await run_in_threadpool(lambda: list(replay_each()))
    return BulkReplayOut(matched=len(ids), results=[_replay_out(r) for r in results])


@router.post(
    "/dead-letters/{letter_id:int}/discard", status_code=204, responses=_NOT_FOUND | _REFUSED | BODY_ANSWERS
)
async def discard_dead_letter(request: Request, letter_id: LetterId, who: Actor, body: DiscardIn) -> None:
    """Close a dead letter without delivering it; ``why`` goes into the audit log."""

    def work(session: Session) -> Replayed:
        dead_letters.discard(session, letter_id, actor=who, why=body.why)
        return Replayed(letter_id, 0, "discarded", "")

    await run_in_threadpool(_write, request, work)


@router.put(
    "/dead-letters/{letter_id:int}/lead",
    response_model=ReplayOut,
    responses=_NOT_FOUND | _REFUSED | BODY_ANSWERS,
)
async def edit_dead_letter(
    request: Request, letter_id: LetterId, who: Actor, lead: Annotated[dict[str, Any], Body()]
) -> Any:
    """Replace the canonical lead (validated, as the canonical channel takes it) and replay it."""
    result = await run_in_threadpool(
        _write, request, lambda s: dead_letters.edit(s, letter_id, lead, actor=who, routing=_routing(request))
    )
    return _replay_out(result)


@router.get("/leads/{lead_id:int}", response_model=LeadDetailOut, responses=_NOT_FOUND)
async def get_lead(request: Request, lead_id: LeadId, _: Actor) -> Any:
    def load(session: Session) -> dict[str, Any]:
        view = queries.lead_view(session, lead_id)
        if view is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lead {lead_id}")
        return {
            **LeadOut.model_validate(view.lead).model_dump(),
            "canonical_lead": view.lead.lead,
            "raw": _raw(view.lead.raw_body),
            "delivery_attempts": [AttemptOut.model_validate(a) for a in view.attempts],
            "dead_letter_ids": [d.id for d in view.dead_letters],
        }

    return await run_in_threadpool(_read, request, load)


class IntroductionSide(BaseModel):
    lead_id: int
    channel: str
    reference: str | None
    received_at: datetime


class IntroductionOut(BaseModel):
    client: str | None
    location: str | None
    later: IntroductionSide
    first: IntroductionSide
    opportunity_id: int | None
    state: str = Field(description="attached, or normalised while the first one is still on its way")
    reject_by: datetime
    seconds_left: int


def _side(lead: Any) -> IntroductionSide:
    return IntroductionSide(
        lead_id=lead.id, channel=lead.channel, reference=lead.external_id, received_at=lead.received_at
    )


@router.get("/introductions", response_model=list[IntroductionOut])
async def list_introductions(request: Request, _: Actor, include_expired: bool = False) -> Any:
    """Later introductions of clients another broker introduced first, with the rejection deadline."""
    hours = _routing(request).defaults.rejection_window_hours

    def load(session: Session) -> list[IntroductionOut]:
        rows = introductions.competing(session, rejection_hours=hours, include_expired=include_expired)
        return [
            IntroductionOut(
                client=((row.lead.lead or {}).get("contact") or {}).get("full_name"),
                location=row.lead.location,
                later=_side(row.lead),
                first=_side(row.first),
                opportunity_id=row.lead.opportunity_id or row.first.opportunity_id,
                state=row.lead.state,
                reject_by=row.deadline,
                seconds_left=max(0, int(row.time_left.total_seconds())),
            )
            for row in rows
        ]

    return await run_in_threadpool(_read, request, load)
