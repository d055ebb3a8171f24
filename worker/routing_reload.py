"""Routing reload in the worker: each pool process looks at the file before each task.

A Celery worker is a parent and its pool (prefork children, or threads). Each
process holds its own :class:`~leadrelay.runtime.Runtime`, so each looks for
itself: one ``stat()`` at the start of every task, the file read and validated
only when it changed (docs/operations.md, "Changing the routing"). SIGHUP makes
the parent (and its scheduler) reload at once and say whether the file is good;
Celery's own SIGHUP handler (re-exec the worker, which a bad file would stop) is
replaced.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import structlog
from celery.signals import task_prerun, worker_ready

from leadrelay.runtime import current_runtime

log = structlog.get_logger(__name__)


@task_prerun.connect
def _look_before_each_task(**_: Any) -> None:
    try:
        current_runtime().refresh_routing()
    except Exception:  # the task runs with the routing it has; the reload said why, or will
        log.exception("routing_reload_failed")


def _reload_now() -> None:
    try:
        current_runtime().refresh_routing(force=True)
    except Exception:
        log.exception("routing_reload_failed")


def on_sighup(_signum: int, _frame: Any) -> None:
    # not in the handler itself: it may have interrupted a thread holding the runtime's locks
    threading.Thread(target=_reload_now, name="routing-reload", daemon=True).start()


@worker_ready.connect
def _take_sighup(**_: Any) -> None:
    if threading.current_thread() is threading.main_thread():  # only there can a handler be set
        signal.signal(signal.SIGHUP, on_sighup)
