"""Celery tasks: thin wrappers that open the runtime and call typed functions."""

from __future__ import annotations

import os
import socket
import time
import uuid
from typing import Any

import structlog
from celery import Task
from sqlalchemy.exc import DBAPIError

from leadrelay import logs
from leadrelay.db import LEDGER_UNREACHABLE, kept_connections
from leadrelay.notify import sender_for
from leadrelay.runtime import current_runtime
from leadrelay.worker import alerts, bulk_jobs, pipeline, retention
from leadrelay.worker.celery_app import (
    ALERTS_TASK,
    CONTROL_QUEUE,
    FAN_OUT_TASK,
    NOTIFY_TASK,
    RETENTION_TASK,
    app,
)
from leadrelay.worker.imap import poll as imap_poll
from leadrelay.worker.imap.schedule import POLL_TASK
from leadrelay.worker.queue import (
    MESSAGE_MOST,
    PROCESS_MANY_TASK,
    PROCESS_TASK,
    enqueue,
    lead_ids_in,
    publish_each,
)
from leadrelay.worker.scheduling.periodic import sweep_now
from leadrelay.worker.speed_to_lead import sender

log = structlog.get_logger(__name__)

HAND_ON_AFTER = 2.0  # seconds a message of several leads starts new ones for (_process_in_turn)
_clock = time.monotonic  # the tests' to set


def _owner() -> str:
    """A lease owner unique to this execution (a redelivered message gets a new one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@app.task(name=PROCESS_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=5)
def process_lead(self: Task[[int], str], lead_id: int) -> str:
    [outcome] = _process_in_turn(self, [int(lead_id)])
    return outcome


@app.task(name=PROCESS_MANY_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=5)
def process_leads(self: Task[[list[object]], list[str]], lead_ids: list[object]) -> list[str]:
    """Several leads of one publish (:func:`leadrelay.worker.queue.messages`), one after another.

    The broker is not trusted to be well-formed: the ids are read as a fan-out's are.
    """
    if not isinstance(lead_ids, list):
        log.warning("process_skipped", skipped=1)
        return []
    return _process_in_turn(self, lead_ids_in(lead_ids, most=MESSAGE_MOST, skipped_event="process_skipped"))


def _process_in_turn(task: Task[Any, Any], lead_ids: list[int]) -> list[str]:
    """Each lead as far as it can go now, in turn; what a message does, whatever its size.

    * A message shares Celery's cost only while its leads are quick: once it has run
      :data:`HAND_ON_AFTER` seconds, the leads not started go on in a new message, to
      whichever slot is free. One account's slow Nexudus thus holds another account's
      leads up for one lead at most, and a message stays far inside the task's hard
      time limit and the sweeper's ``LEADRELAY_REQUEUE_AFTER_SECONDS``. If the broker
      takes none of them, they go on here.
    * The ledger unreachable (Postgres restarting: ``OperationalError``,
      ``InterfaceError``): the message is tried again 2 s later with the leads not yet
      done, up to five times; then the leads after the failing one go on in a new
      message and the error is raised (the sweeper takes the lead once Postgres is back).
    * Any other error in a lead: the leads after it go on in a new message, then the
      error is raised (Celery logs it; the lead is left to the sweeper).

    Staff are notified once a lead of the message was delivered, however the message ends,
    and the accounts whose deliveries freed a slot hand out what waits for them once,
    after the last lead (:func:`leadrelay.worker.pipeline.dispatch_freed`). The leads and
    that dispatch share one pair of kept connections (:func:`leadrelay.db.kept_connections`,
    each pinged before a reuse), checked out once a message instead of once a lead.
    """
    rt = current_runtime()
    started = _clock()
    outcomes: list[str] = []
    freed: set[str] = set()
    hand_on = True
    with kept_connections(rt.sessions):
        try:
            for done, lead_id in enumerate(lead_ids):
                rest = lead_ids[done:]
                if done and hand_on and _clock() - started > HAND_ON_AFTER:
                    sent = enqueue(rest)
                    log.info("leads_handed_on", leads=len(rest), sent=sent)
                    if sent:
                        break
                    hand_on = False  # the broker took none: they go on here
                with logs.task_context(lead_id=lead_id):
                    try:
                        outcome = pipeline.process(rt, lead_id, owner=_owner(), enqueue=enqueue, freed=freed)
                    except LEDGER_UNREACHABLE as exc:
                        log.warning("ledger_unavailable", error=type(exc).__name__)
                        if task.request.retries < (task.max_retries or 0):
                            args = tuple(rest) if task.name == PROCESS_TASK else (rest,)
                            raise task.retry(args=args, countdown=2, exc=exc) from None
                        enqueue(rest[1:])
                        raise
                    except Exception:
                        enqueue(rest[1:])
                        raise
                    log.info("lead_processed", outcome=outcome)
                outcomes.append(outcome)
        finally:
            pipeline.dispatch_freed(rt, freed, enqueue=enqueue)
            if rt.routing.notifications.enabled and ("delivered" in outcomes or "attached" in outcomes):
                _kick_notifications()
    return outcomes


def _kick_notifications() -> None:
    """Send what the lead's settling owes staff now (the scheduler's job catches what this misses)."""
    try:
        app.send_task(NOTIFY_TASK, queue=CONTROL_QUEUE, retry=False)
    except Exception as exc:  # kombu raises transport-specific errors; the outbox keeps the rows
        log.warning("notify_enqueue_failed", error=type(exc).__name__)


@app.task(
    name=FAN_OUT_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=5,
)
def fan_out(self: Task[[list[object]], int], lead_ids: list[object]) -> int:
    """A receiver's batch of committed leads, put on the leads queue one message each.

    A broker that took none of them (``enqueue`` logs why) gets the batch again 2 s
    later, up to five times; then the sweeper publishes what is still unsent.
    """
    if not isinstance(lead_ids, list):
        log.warning("fan_out_skipped", skipped=1)
        return 0
    leads, sent = publish_each(lead_ids)
    log.info("fanned_out", leads=leads, sent=sent)
    if leads and not sent:
        raise self.retry(countdown=2)
    return sent


@app.task(name=NOTIFY_TASK, acks_late=True, ignore_result=True)
def send_notifications() -> dict[str, int]:
    report = sender.send_due(current_runtime(), owner=_owner())
    return {"sent": report.sent, "failed": report.failed}


@app.task(name="leadrelay.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict[str, Any]:
    """One sweep on demand (the elected scheduler runs its own, inline)."""
    report = sweep_now(current_runtime())
    return {"found": report.found, "enqueued": report.enqueued}


@app.task(name=POLL_TASK, acks_late=True, ignore_result=True)
def poll_inbox(name: str) -> dict[str, Any]:
    # stop starting batches well before the hard time limit; the next tick continues
    limit = app.conf.task_time_limit
    report = imap_poll.poll_inbox(
        current_runtime(), name, enqueue=enqueue, max_seconds=limit * 0.8 if limit else None
    )
    return report.summary()


@app.task(name=ALERTS_TASK, acks_late=True, ignore_result=True)
def check_alerts() -> int:
    rt = current_runtime()
    send = sender_for(rt.settings)
    return len(alerts.check(rt, send=send)) if send is not None else 0


@app.task(name=RETENTION_TASK, acks_late=True, ignore_result=True, time_limit=3600)
def purge_expired() -> dict[str, Any]:
    rt = current_runtime()
    if rt.settings.retention_days <= 0:
        return {"leads": 0}
    report = retention.purge_expired(rt, days=rt.settings.retention_days)
    log.info("retention_purged", leads=report.leads, dead_letters_closed=report.dead_letters_closed)
    return {"leads": report.leads, "dead_letters_closed": report.dead_letters_closed}


@app.task(name=bulk_jobs.BULK_TASK, acks_late=True, ignore_result=True)
def run_bulk_job(job_id: int) -> bool:
    """One chunk of a bulk replay or discard; the rest goes on in a new message."""
    try:
        more = bulk_jobs.run_chunk(current_runtime(), int(job_id), publish=enqueue)
    except DBAPIError as exc:  # the ledger is unreachable: the scheduler resumes the job later
        log.warning("ledger_unavailable", error=type(exc).__name__, bulk_job=int(job_id))
        return False
    if more:
        bulk_jobs.send(int(job_id))
    return more
