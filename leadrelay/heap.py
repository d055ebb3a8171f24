"""A served process's long-lived objects, put out of the garbage collector's reach.

A receiver or worker process holds ~190,000 container objects once it has
imported its modules (FastAPI, SQLAlchemy, Celery, pydantic's schemas) and
built its app. CPython's full collection walks every one of them: ~130–150 ms
on this project's 2-core bench machine, during which a receiver answers nothing
and a worker's lead waits. Such a collection comes every few hundred leads; at
1,000 webhooks/s it alone lands a whole batch of answers in the p99
(bench/PROFILE.md, eleventh pass).

:func:`freeze_long_lived` collects once and moves what survives into the
interpreter's permanent generation (:func:`gc.freeze`, the standard library's
tool for exactly this): later collections walk only what was made since, and
the objects a prefork parent froze are not written to by a child's collections
(its memory stays shared). Frozen objects are still freed by reference counting;
only a reference cycle among them would stay, which is why it is called once
startup is over, in the processes that serve — not in tests or short commands.

What the first units of work import or cache for good (a receiver's broker
client: Celery, kombu and redis-py, ~17,000 objects, are imported by its first
publish) would otherwise make every later full collection walk them again:
:class:`WarmFreeze` freezes a second time once ``WARM_UNITS`` units have run.
That second freeze is itself one full collection (one pause, once in a process's
life), and whatever cyclic garbage the units in flight at that moment leave is
frozen with the rest: a one-off, bounded leak, the price of the later pauses.
"""

from __future__ import annotations

import gc
import threading

import structlog

log = structlog.get_logger(__name__)

WARM_UNITS = 200  # units of work (a worker's tasks, a receiver's published batches) before the second freeze


def freeze_long_lived(where: str) -> int:
    """Collect, then freeze everything alive now; returns how many objects are frozen in all."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("heap_frozen", where=where, frozen=frozen)
    return frozen


class WarmFreeze:
    """Freezes once more after the process's first ``after`` units of work: see the module's docstring."""

    def __init__(self, where: str, *, after: int = WARM_UNITS) -> None:
        self.where = where
        self._left = after
        self._lock = threading.Lock()  # units may end on several threads at once

    def tick(self) -> None:
        """One unit of work ended."""
        if not self._left:
            return
        with self._lock:
            if not self._left:
                return
            self._left -= 1
            warm = not self._left
        if warm:
            freeze_long_lived(self.where)
