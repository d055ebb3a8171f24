"""What leadrelay runs on a schedule, and where each job runs.

* **sweep** (every ``sweep_interval_seconds``) runs inline, in the scheduler's
  thread: it is the job that keeps leads moving, so it never waits in a queue
  behind deliveries for a pool slot, and its last run is the scheduler's pulse
  (``/readyz``, the ``scheduler`` alert, ``leadrelay_scheduler_last_run_age_seconds``);
  it is a few indexed queries and a publish.
* **alerts**, **retention** (daily at 03:17 UTC) and each inbox's **poll** are sent
  as tasks to the control queue, as beat sent them: they call out (an alert
  webhook, an IMAP server) or run long, and must not hold up the next sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import structlog

from leadrelay.models import SWEEP_JOB
from leadrelay.runtime import Runtime
from leadrelay.worker import bulk_jobs, sweeper
from leadrelay.worker.celery_app import ALERTS_TASK, CONTROL_QUEUE, NOTIFY_TASK, RETENTION_TASK, app
from leadrelay.worker.imap.schedule import beat_entries
from leadrelay.worker.queue import enqueue, waiting
from leadrelay.worker.scheduling.jobs import DailyAt, Every, Job

log = structlog.get_logger(__name__)

ALERTS_JOB = "alerts"
RETENTION_JOB = "retention"
BULK_JOBS_JOB = "bulk-jobs"  # resumes a bulk job whose message was lost
NOTIFY_JOB = "notify"
RETENTION_AT = DailyAt(hour=3, minute=17)  # a quiet hour


def sweep_now(rt: Runtime) -> sweeper.SweepReport:
    report = sweeper.sweep(rt, enqueue=enqueue, waiting=waiting)
    if report.found:
        log.info("sweep", found=report.found, enqueued=report.enqueued)
    return report


def send(task: str, args: Sequence[Any] = (), expires: float | None = None) -> None:
    """One message to the control queue; a broker that refuses raises (the job runs again next tick)."""
    app.send_task(task, args=list(args), queue=CONTROL_QUEUE, expires=expires, retry=False)


def leadrelay_jobs(rt: Runtime) -> list[Job]:
    settings = rt.settings
    jobs = [
        Job(SWEEP_JOB, Every(settings.sweep_interval_seconds), partial(sweep_now, rt)),
        Job(ALERTS_JOB, Every(settings.alert_interval_seconds), partial(send, ALERTS_TASK)),
        Job(RETENTION_JOB, RETENTION_AT, partial(send, RETENTION_TASK)),
        Job(
            BULK_JOBS_JOB,
            Every(max(settings.sweep_interval_seconds, 1.0)),
            partial(bulk_jobs.resume_stale, rt),
        ),
    ]
    if rt.routing.notifications.enabled:  # what a delivery's own send missed (worker/speed_to_lead)
        jobs.append(Job(NOTIFY_JOB, Every(settings.notify_interval_seconds), partial(send, NOTIFY_TASK)))
    for name, entry in beat_entries(rt.routing).items():
        run = partial(send, entry["task"], entry["args"], entry["options"]["expires"])
        jobs.append(Job(name, Every(entry["schedule"]), run))
    return jobs
