"""Every ``leadrelay worker`` is a scheduler candidate (``--no-beat`` opts out).

The loop runs in a daemon thread of the worker's main process, started once the
worker is ready and stopped — resigning the lease, so another candidate takes
over at its next tick — as soon as it starts shutting down. With the prefork pool
the main process runs no tasks, so the loop never waits for a pool slot; the pool
children forked from it rebuild their own runtime (leadrelay.runtime).
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready, worker_shutting_down

from leadrelay.runtime import current_runtime
from leadrelay.worker.scheduling.periodic import leadrelay_jobs
from leadrelay.worker.scheduling.scheduler import Scheduler

_joins = True
_running: Scheduler | None = None


def join_election(joins: bool) -> None:
    """Whether this process's worker takes part (set before the worker starts)."""
    global _joins
    _joins = joins


@worker_ready.connect
def _start(**_: Any) -> None:
    global _running
    if _joins and _running is None:
        _running = Scheduler(runtime=current_runtime, jobs=leadrelay_jobs)
        _running.start()


@worker_shutting_down.connect
def _stop(**_: Any) -> None:
    global _running
    if _running is not None:
        # briefly: this runs in a signal handler, and the lease lapses on its own anyway
        _running.stop(timeout=2)
        _running = None
