"""Celery tasks: thin wrappers that open the runtime and call typed functions."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

import structlog
from celery import Task
from sqlalchemy.exc import DBAPIError

from leadrelay.runtime import current_runtime
from worker import pipeline, sweeper
from worker.celery_app import app
from worker.imap import poll as imap_poll
from worker.imap.schedule import POLL_TASK
from worker.queue import PROCESS_TASK, enqueue, waiting

log = structlog.get_logger(__name__)


def _owner() -> str:
    """A lease owner unique to this execution (a redelivered message gets a new one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@app.task(name=PROCESS_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=5)
def process_lead(self: Task, lead_id: int) -> str:
    try:
        outcome = pipeline.process(current_runtime(), int(lead_id), owner=_owner(), enqueue=enqueue)
    except DBAPIError as exc:
        # The ledger is unreachable (e.g. Postgres restarting). Try again shortly;
        # past that, the sweeper re-enqueues the lead once the database is back.
        log.warning("ledger_unavailable", lead_id=lead_id, error=type(exc).__name__)
        raise self.retry(countdown=2, exc=exc) from None
    log.info("lead_processed", lead_id=lead_id, outcome=outcome)
    return outcome


@app.task(name="leadrelay.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict[str, Any]:
    report = sweeper.sweep(current_runtime(), enqueue=enqueue, waiting=waiting)
    if report.found:
        log.info("sweep", found=report.found, enqueued=report.enqueued)
    return {"found": report.found, "enqueued": report.enqueued}


@app.task(name=POLL_TASK, acks_late=True, ignore_result=True)
def poll_inbox(name: str) -> dict[str, Any]:
    # stop starting batches well before the hard time limit; the next tick continues
    limit = app.conf.task_time_limit
    report = imap_poll.poll_inbox(
        current_runtime(), name, enqueue=enqueue, max_seconds=limit * 0.8 if limit else None
    )
    return report.summary()
