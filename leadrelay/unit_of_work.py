"""One unit of work: a ledger transaction, and the leads to put on the broker once it has committed.

::

    with unit_of_work(rt) as uow:  # leadrelay.worker.queue.unit_of_work: publishes to the broker
        result = dead_letters.replay(uow.session, letter_id, actor=who, routing=rt.routing)
        if result.enqueue:
            uow.enqueue(result.lead_id)
    uow.published  # how many of them reached the broker

* The ids given to :meth:`UnitOfWork.enqueue` are published only after the
  commit succeeded, in one call: a worker never reads a lead before it is there.
* An exception in the block rolls the transaction back and propagates; the ids
  are dropped: nothing is stored and nothing is published.
* A publish that fails after the commit is logged, not raised (the action did
  happen). Nothing is lost: a unit enqueues a lead only in a state the sweeper
  re-enqueues when its message never arrives (``received``, or ``normalised``
  with ``enqueued_at`` written in the same transaction), once
  ``requeue_after_seconds`` have passed.

The publishing function is passed in, so that this core module does not import
the worker layer (Celery): the interfaces use
:func:`leadrelay.worker.queue.unit_of_work`, which publishes to the broker, and a
worker service that is handed an ``enqueue`` (dispatch, the sweeper, the inbox
poller) passes that one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.orm import Session

from leadrelay.driver import Unit, unit

if TYPE_CHECKING:
    from leadrelay.runtime import Runtime

log = structlog.get_logger(__name__)

Publish = Callable[[list[int]], int]
"""Puts lead ids on the broker; returns how many it took."""


class UnitOfWork:
    """One transaction (a unit of work: leadrelay.driver), and the lead ids to publish after its commit."""

    def __init__(self, work: Unit) -> None:
        self.work = work  # prebuilt statements, no session (leadrelay.driver)
        self.published = 0  # set once the unit has committed and published
        self._ids: dict[int, None] = {}  # ordered, each lead once

    def enqueue(self, *lead_ids: int) -> None:
        """Publish these leads once the transaction has committed (never before, never on rollback)."""
        self._ids.update(dict.fromkeys(lead_ids))

    @property
    def session(self) -> Session:
        """The transaction's session (opened on first use, on the same connection)."""
        return self.work.orm()

    @property
    def pending(self) -> list[int]:
        return list(self._ids)


@contextmanager
def unit_of_work(rt: Runtime, *, publish: Publish) -> Iterator[UnitOfWork]:
    """A transaction on ``rt``'s ledger whose enqueued ids ``publish`` gets after the commit."""
    with unit(rt.sessions) as work:
        uow = UnitOfWork(work)
        yield uow
    ids = uow.pending
    if not ids:
        return
    try:
        uow.published = publish(ids)
    except Exception as exc:  # committed: the sweeper publishes them later
        log.warning("enqueue_failed", error=type(exc).__name__, sent=0, of=len(ids))
