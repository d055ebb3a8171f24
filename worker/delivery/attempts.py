"""A delivery run's hold on its lead: the lease, each request's attempt row, the pending writes.

Before each request the lease is renewed on the ledger's clock, the request's
attempt row commits and, for a create, the lead's create mark with it — one
statement. What a round trip leaves to record (its outcome, the coworker cache)
waits in :attr:`Hold.pending` for the run's next write: on Postgres it rides in
that statement (:mod:`leadrelay.ledger.side_writes`), elsewhere in its transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from leadrelay import ledger
from leadrelay.db import utcnow
from leadrelay.driver import Unit, unit
from leadrelay.errors import Refused
from leadrelay.models import DeliveryAttempt
from leadrelay.nexudus.classify import Outcome as Answer
from leadrelay.nexudus.classify import Result
from leadrelay.nexudus.client import SendGuard
from leadrelay.runtime import Runtime
from leadrelay.worker.delivery.snapshot import Snapshot

LEASE_MARGIN = 0.1  # a request must end this share of the lease (at least a second) before it does

Write = Callable[[Unit], object]


class LostLease(Refused):
    """Another worker took the lead over (our lease expired): stop, write nothing."""


# built once: a new statement per call cost more CPU to build and cache-key than to send
_OUTCOME = {
    name: bindparam(f"v_{name}", type_=DeliveryAttempt.__table__.c[name].type)
    for name in ("finished_at", "status_code", "outcome", "error", "response")
}
_FINISH_ATTEMPT = update(DeliveryAttempt).where(DeliveryAttempt.id == bindparam("_id")).values(_OUTCOME)
_RECORD_ATTEMPT = insert(DeliveryAttempt).values(
    {
        **_OUTCOME,
        **{
            name: bindparam(f"v_{name}", type_=DeliveryAttempt.__table__.c[name].type)
            for name in ("lead_id", "call", "started_at")
        },
    }
)


class Hold:
    """One run's lead (``s``, as this run knows it), its lease and the writes pending for the ledger."""

    def __init__(self, rt: Runtime, snapshot: Snapshot, owner: str) -> None:
        self.rt = rt
        self.s = snapshot
        self.owner = owner
        # ledger writes that ride along with the run's next write (see the module's docstring)
        self._pending: list[Write] = []

    def later(self, write: Write) -> None:
        """A ledger write for the run's next statement (a side write) or transaction (any other)."""
        self._pending.append(write)

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """A transaction that first writes what is pending."""
        with self.work() as work:
            yield work.orm()

    @contextmanager
    def work(self) -> Iterator[Unit]:
        """:meth:`tx` as a unit of work (:mod:`leadrelay.driver`): a session only if a step asks for one."""
        with unit(self.rt.sessions) as work:
            pending, self._pending = self._pending, []
            for write in pending:
                write(work)
            yield work

    def flush(self) -> None:
        """Write what is still pending (the delivery ended without a final transaction)."""
        if self._pending:
            with self.tx():
                pass

    def call(
        self,
        call: str,
        send: Callable[[SendGuard], Result],
        *,
        creating: ledger.CreateTag | None = None,
    ) -> Result:
        """One Nexudus call, its requests guarded by the lease and each one on record."""
        guard = RequestGuard(self, call, creating=creating)
        result = send(guard)
        if not guard.sent and not (result.status_code is None and result.outcome is Answer.throttle):
            guard.record(result)  # nothing reached the API (the login failed): on record all the same
        return result

    @contextmanager
    def statement_unit(self) -> Iterator[tuple[Unit, list[ledger.SideWrite]]]:
        """The unit of the run's next statement, and the pending side writes it is to carry.

        On Postgres, pending writes beside the lead's row are handed over
        (:mod:`leadrelay.ledger.side_writes`) to ride in that statement. If nothing is
        left pending, the statement commits by itself (one round trip); otherwise it
        runs in a transaction that first writes what is pending.
        """
        carried = self._side_writes_only()
        with self.work() if self._pending else unit(self.rt.sessions, autocommit=True) as work:
            yield work, carried

    def lease_for_request(self, call: str, *, creating: ledger.CreateTag | None, write: bool = True) -> int:
        """Renew the lease right before a request and start its attempt row (LostLease: gone).

        One statement, carrying what is pending beside the lead's row (see
        :meth:`statement_unit`); the row commits before the request is sent, and only
        under our lease. The request's outcome finishes it with the run's next write.
        Before a ``write`` its commit waits for the disk; before a lookup it need not
        (the next write's will, and the WAL is flushed in order).
        """
        lease_seconds = self.rt.settings.lease_seconds
        with self.statement_unit() as (work, carried):
            attempt_id = ledger.renew_lease_and_start_attempt(
                work,
                self.s.id,
                call,
                owner=self.owner,
                lease_seconds=lease_seconds,
                creating=creating,
                side_writes=carried,
                flushed=write or creating is not None,
            )
        if attempt_id is None:
            raise LostLease()
        return attempt_id

    def _side_writes_only(self) -> list[ledger.SideWrite]:
        """What is pending, taken, if the next statement (Postgres) may carry all of it; else nothing."""
        if not self._pending or self.rt.engine.dialect.name != "postgresql":
            return []
        carried = [write for write in self._pending if isinstance(write, ledger.SideWrite)]
        if len(carried) != len(self._pending):
            return []
        self._pending = []
        return carried

    def create_refused(self, previous: datetime | None) -> None:
        """A create answered with a refusal (nothing made): may-have-happened is what it was before."""
        self.s = replace(self.s, create_sent_at=previous)
        lead_id, owner = self.s.id, self.owner
        self.later(lambda work: ledger.restore_create_sent(work, lead_id, owner=owner, sent_at=previous))


class RequestGuard:
    """One call's requests, as the delivery sees them (the client's :class:`SendGuard`).

    Before each request: the lease is renewed on the ledger's clock (LostLease if
    another worker has it), the request's attempt row — and for a create, the lead's
    create mark — commits, and the request is given what is left of the lease
    minus a margin. After it: its outcome rides along with the run's next write.
    """

    def __init__(self, hold: Hold, call: str, *, creating: ledger.CreateTag | None) -> None:
        self._hold = hold
        self._call = call
        self._creating = creating
        self._attempt_id: int | None = None
        self._started = utcnow()
        self._mark_before: datetime | None = None
        self.sent = False

    def before_send(self, *, write: bool) -> float:
        hold = self._hold
        self._started = utcnow()
        self._mark_before = hold.s.create_sent_at
        self._attempt_id = hold.lease_for_request(self._call, creating=self._creating, write=write)
        if self._creating is not None:
            hold.s = replace(
                hold.s, create_sent_at=self._started
            )  # in memory; the ledger holds its own clock's
        self.sent = True
        lease = hold.rt.settings.lease_seconds
        return lease - max(1.0, lease * LEASE_MARGIN)

    def after_send(self, result: Result) -> None:
        self.record(result)
        if self._creating is not None and not result.ok and not result.maybe_committed:
            self._hold.create_refused(self._mark_before)

    def record(self, result: Result) -> None:
        """The request's outcome: written with the delivery's next ledger write."""
        recorded = "unknown" if result.maybe_committed else result.outcome.value
        values = {
            "finished_at": utcnow(),
            "status_code": result.status_code,
            "outcome": recorded,
            "error": None if result.ok else result.message,
            "response": result.excerpt[: ledger.RESPONSE_EXCERPT] if result.excerpt else None,
        }
        params: dict[str, Any] = {f"v_{k}": v for k, v in values.items()}
        if self._attempt_id is None:  # never sent (the login failed): on record after the fact
            params.update(v_lead_id=self._hold.s.id, v_call=self._call, v_started_at=self._started)
            # not a side write: carried in a later statement its row could take an id after that
            # statement's own attempt row, and a lead's attempts are read in id order
            self._hold.later(lambda work: work.execute(_RECORD_ATTEMPT, params))
        else:
            params["_id"] = self._attempt_id
            self._hold.later(ledger.SideWrite(_FINISH_ATTEMPT, params))
