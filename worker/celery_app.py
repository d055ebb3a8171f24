"""The Celery application. Configured lazily from the environment on first use.

Reliability choices (docs/guarantees.md):

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged
  only after its task returned, and goes back to the queue if the worker process
  dies mid-task. Tasks are idempotent (guarded ledger transitions), so a
  redelivery is harmless.
* ``worker_prefetch_multiplier = 1``: a worker holds one message per slot, so a
  backlog is shared between workers instead of hoarded by the first one.
* ``visibility_timeout`` (Redis): one hour. Recovery does not depend on it — the
  ledger sweeper re-enqueues leads whose lease expired — so it only needs to be
  longer than any task, to avoid redelivering a running one.
* The ledger, not the broker, is the source of truth: messages carry lead ids,
  and losing every message loses no lead.
* No Celery beat: the periodic jobs (sweep, inbox polls, alerts, retention) are
  run by the scheduler elected in the ledger among the workers and any
  ``leadrelay beat`` (worker/scheduling/); ``worker.scheduling.in_worker`` starts
  each worker's candidate.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, worker_init, worker_process_init
from kombu import Queue

from leadrelay import heap
from leadrelay.runtime import set_pool_size
from leadrelay.settings import get_settings
from leadrelay.worker.imap.schedule import POLL_TASK

LEADS_QUEUE = "leadrelay.leads"
CONTROL_QUEUE = "leadrelay.control"
ALERTS_TASK = "leadrelay.alerts"
RETENTION_TASK = "leadrelay.retention"
NOTIFY_TASK = "leadrelay.notify"
FAN_OUT_TASK = "leadrelay.fan_out"

app = Celery(
    "leadrelay",
    include=[
        "leadrelay.worker.tasks",
        "leadrelay.worker.scheduling.in_worker",
        "leadrelay.worker.routing_reload",
    ],
)


def celery_config() -> dict[str, Any]:
    settings = get_settings()
    settings.ensure_data_dir()
    broker = settings.celery_broker_url()
    transport_options: dict[str, Any] = {}
    if broker.startswith(("redis://", "rediss://")):
        transport_options = {"visibility_timeout": 3600, "socket_timeout": 5, "socket_connect_timeout": 5}
    return {
        "broker_url": broker,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 5,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": LEADS_QUEUE,
        "task_queues": [Queue(LEADS_QUEUE), Queue(CONTROL_QUEUE)],
        "task_routes": {
            task: {"queue": CONTROL_QUEUE}
            for task in ("leadrelay.sweep", POLL_TASK, ALERTS_TASK, RETENTION_TASK, NOTIFY_TASK, FAN_OUT_TASK)
        },
        "task_time_limit": max(settings.lease_seconds * 4, 300),
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
    }


def node_name(name: str | None = None) -> str:
    """A worker's node name: ``name`` on this host, or ``leadrelay-<pid>`` on it (unique on the host).

    Celery names every worker ``celery@<host>`` unless told otherwise, and a worker
    listens for remote control on an exclusive queue named after it: on RabbitMQ a
    second worker on the same host under the same name cannot declare that queue and
    exits at start-up (``ResourceLocked``). ``leadrelay worker --name``
    (``LEADRELAY_WORKER_NAME``) gives the name; without an ``@`` the host's is added
    (``%h``, Celery's), so one setting shared by workers on several hosts stays unique.
    """
    chosen = name or f"leadrelay-{os.getpid()}"
    return chosen if "@" in chosen else f"{chosen}@%h"


@app.on_configure.connect
def _configure(sender: Celery, **_: Any) -> None:
    sender.conf.update(celery_config())


@worker_init.connect
def _size_the_pool(sender: Any = None, **_: Any) -> None:
    """A thread pool shares one runtime: two pooled connections per thread (no overflow churn).

    A task keeps two for its units of work (``db.kept_connections``): one for its
    transactions, one for its one-statement units; the scheduler's thread takes the rest.
    """
    pool = getattr(sender, "pool_cls", None)
    name = pool if isinstance(pool, str) else getattr(pool, "__module__", "")
    if "thread" in str(name):
        set_pool_size(2 * int(getattr(sender, "concurrency", 0) or 0) + 2)


@worker_init.connect
def _freeze_in_worker(**_: Any) -> None:
    """The modules and the app, frozen before any pool process is forked (see :mod:`leadrelay.heap`)."""
    global _WARM
    heap.freeze_long_lived("worker")
    _WARM = heap.WarmFreeze("worker, warm")  # a prefork pool process counts its own (a copy made at the fork)


@worker_process_init.connect
def _freeze_in_pool_process(**_: Any) -> None:
    """What the pool process was given after the parent froze its own (prefork)."""
    heap.freeze_long_lived("pool process")


# only a worker counts its tasks: an eager task (a test, a command) never freezes its process
_WARM: heap.WarmFreeze | None = None


@task_postrun.connect
def _freeze_once_warm(**_: Any) -> None:
    """What the first tasks import or cache (the runtime, the Nexudus clients, compiled statements)."""
    if _WARM is not None:
        _WARM.tick()
