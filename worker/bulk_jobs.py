"""Bulk replay and discard of dead letters: a preview, then a job a worker runs in chunks.

* :func:`preview` says what a bulk action would do — how many it would take, of
  which reasons, which it would skip and why — and changes nothing.
* :func:`create` fixes the selection in a ``bulk_jobs`` row; the caller commits,
  then :func:`send` puts the job on the control queue.
* :func:`run_chunk` (the ``leadrelay.bulk_job`` task) takes the next items, each in
  its own transaction that locks the job row, takes the item with the single
  :func:`~leadrelay.worker.dead_letters.replay` or
  :func:`~leadrelay.worker.dead_letters.discard` (audited under the job's actor) and
  moves ``done`` on: an item is taken once, whichever worker runs it, and a job a
  killed worker left goes on from its last committed item. A replay can never make
  a second opportunity: it is the one replay the CLI, the API and the page use.
* :func:`resume_stale` (a periodic job of the elected scheduler) sends again every
  unfinished job that has not moved for ``requeue_after_seconds``: its message was
  lost with a worker or a flushed broker.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, load_only

from leadrelay import errors
from leadrelay.db import transaction, utcnow
from leadrelay.ledger import audit
from leadrelay.models import BulkJob, DeadLetter, Lead
from leadrelay.runtime import Runtime
from leadrelay.unit_of_work import Publish, unit_of_work
from leadrelay.worker import dead_letters
from leadrelay.worker.celery_app import CONTROL_QUEUE, app
from leadrelay.worker.dead_letters import ActionRefused

log = structlog.get_logger(__name__)

BULK_TASK = "leadrelay.bulk_job"
ACTIONS = ("replay", "discard")
MAX_ITEMS = 10_000  # dead letters in one job: a larger selection is refused (narrow the filter)
CHUNK = 100  # items a task takes before it hands the rest to a new message
KEPT_PROBLEMS = 20  # refusals a job keeps to show (each is counted, and audited where it acted)
_BATCH = 1_000  # ids per IN (…) of the preview


class JobNotFound(errors.NotFound):
    """No bulk job with that id."""


@dataclass(frozen=True, slots=True)
class Preview:
    """What a bulk action would do now: nothing is changed to find out."""

    action: str
    letter_ids: list[int]
    would: int
    by_reason: dict[str, int]
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (letter id, why not)

    @property
    def selected(self) -> int:
        return len(self.letter_ids)


def _refused(action: str, why: str | None) -> str | None:
    if action not in ACTIONS:
        return f"unknown bulk action {action!r} (replay or discard)"
    if action == "discard" and not (why or "").strip():
        return "say why the dead letters are discarded (it goes into the audit log)"
    return None


def selection(letter_ids: Sequence[int]) -> list[int]:
    """The ids in the order given, each once; more than :data:`MAX_ITEMS` is refused."""
    ids = list(dict.fromkeys(int(i) for i in letter_ids))
    if len(ids) > MAX_ITEMS:
        raise ActionRefused(f"{len(ids)} dead letters selected: at most {MAX_ITEMS} in one bulk action")
    return ids


def preview(session: Session, action: str, letter_ids: Sequence[int]) -> Preview:
    """How many of ``letter_ids`` the action would take, by reason, and which it would skip and why."""
    if (why_not := _refused(action, "-")) is not None:
        raise ActionRefused(why_not)
    ids = selection(letter_ids)
    found: dict[int, tuple[DeadLetter, Lead]] = {}
    for start in range(0, len(ids), _BATCH):
        stmt = (
            select(DeadLetter, Lead)
            .join(Lead, Lead.id == DeadLetter.lead_id)
            .where(DeadLetter.id.in_(ids[start : start + _BATCH]))
            .options(
                load_only(DeadLetter.id, DeadLetter.reason, DeadLetter.status, DeadLetter.resolution),
                load_only(Lead.id, Lead.state, Lead.purged_at, Lead.purged_why),
            )
        )
        found.update({letter.id: (letter, lead) for letter, lead in session.execute(stmt)})
    reasons: Counter[str] = Counter()
    skipped: list[tuple[int, str]] = []
    for letter_id in ids:
        if letter_id not in found:
            skipped.append((letter_id, f"no dead letter {letter_id}"))
            continue
        letter, lead = found[letter_id]
        why = dead_letters.refusal(letter, lead)
        if why is None:
            reasons[letter.reason] += 1
        else:
            skipped.append((letter_id, why))
    return Preview(action, ids, sum(reasons.values()), dict(reasons.most_common()), skipped)


def create(
    session: Session, *, action: str, letter_ids: Sequence[int], actor: str, why: str | None
) -> BulkJob:
    """A job over these dead letters (not yet sent: commit, then :func:`send`)."""
    if (refused := _refused(action, why)) is not None:
        raise ActionRefused(refused)
    ids = selection(letter_ids)
    if not ids:
        raise ActionRefused("no dead letters selected")
    job = BulkJob(
        action=action,
        why=why.strip() if action == "discard" and why else None,
        actor=actor,
        letter_ids=ids,
        total=len(ids),
        done=0,
        failed=0,
        problems=[],
        status="queued",
    )
    session.add(job)
    session.flush()
    audit(
        session,
        actor=actor,
        action=f"bulk_job.{action}",
        target=f"bulk_job:{job.id}",
        result="queued",
        detail={"total": len(ids), **({"why": job.why} if job.why else {})},
    )
    return job


def send(job_id: int) -> bool:
    """Put the job on the control queue; False when the broker did not take it (it is resumed later)."""
    try:
        app.send_task(BULK_TASK, args=[job_id], queue=CONTROL_QUEUE, retry=False)
    except Exception as exc:  # kombu raises transport-specific errors
        log.warning("bulk_job_not_sent", job=job_id, error=type(exc).__name__)
        return False
    return True


def _take(session: Session, job: BulkJob, letter_id: int, rt: Runtime) -> dead_letters.Replayed | str:
    """The job's action on one dead letter: what it did, or why it could not."""
    try:
        with session.begin_nested():  # a failure undoes this item's changes only
            if job.action == "discard":
                dead_letters.discard(session, letter_id, actor=job.actor, why=job.why or "")
                return dead_letters.Replayed(letter_id, 0, "discarded", "")
            result = dead_letters.replay(session, letter_id, actor=job.actor, routing=rt.routing)
            return result if result.outcome != "refused" else result.message
    except ActionRefused as err:
        return str(err)
    except DBAPIError:
        raise  # the ledger is in trouble: the item is taken again when the job is resumed
    except Exception as exc:  # a bug must not stall the job on one item forever
        log.exception("bulk_job_item_failed", job=job.id, letter=letter_id)
        return f"internal error: {type(exc).__name__}"


def _step(rt: Runtime, job_id: int, publish: Publish) -> bool:
    """Take the job's next item in one unit of work; False when there is none left."""
    with unit_of_work(rt, publish=publish) as uow:
        session = uow.session
        job = session.execute(
            select(BulkJob).where(BulkJob.id == job_id).with_for_update()
        ).scalar_one_or_none()
        if job is None or job.status == "done":
            return False
        now = utcnow()
        if job.done < job.total:
            letter_id = job.letter_ids[job.done]
            taken = _take(session, job, letter_id, rt)
            if isinstance(taken, str):
                job.failed += 1
                if len(job.problems) < KEPT_PROBLEMS:
                    job.problems = [*job.problems, {"letter_id": letter_id, "why": taken}]
            elif taken.enqueue:
                uow.enqueue(taken.lead_id)
            job.done += 1
        job.status = "running" if job.done < job.total else "done"
        job.updated_at = now
        if job.status == "done":
            job.finished_at = now
        return job.status != "done"


def run_chunk(rt: Runtime, job_id: int, *, publish: Publish, limit: int = CHUNK) -> bool:
    """Take up to ``limit`` items of the job; True when some are left (send it again)."""
    return all(_step(rt, job_id, publish) for _ in range(limit))


def resume_stale(rt: Runtime, *, send_job: Callable[[int], bool] = send) -> list[int]:
    """Send again the unfinished jobs that have not moved lately (their message was lost)."""
    quiet = utcnow() - timedelta(seconds=rt.settings.requeue_after_seconds)
    with transaction(rt.sessions) as session:
        stale = list(
            session.execute(
                update(BulkJob)
                .where(BulkJob.status != "done", BulkJob.updated_at < quiet)
                .values(updated_at=utcnow())
                .returning(BulkJob.id)
            ).scalars()
        )
    return [job_id for job_id in stale if send_job(job_id)]


def status(session: Session, job_id: int) -> BulkJob:
    job = session.get(BulkJob, job_id)
    if job is None:
        raise JobNotFound(f"no bulk job {job_id}")
    return job
