"""One poll pass of one configured inbox: what the Celery task and ``leadrelay poll`` run.

For every batch of new UIDs, in this order:

1. fetch the raw messages with ``BODY.PEEK[]`` (fetching marks nothing), after asking
   their ``RFC822.SIZE``: of one over ``max_message_bytes`` only the beginning; a
   batch is cut where its bytes pass ``max_batch_bytes``;
2. commit them raw to the ledger, one intake key per notification — nothing is
   read but the headers' keys (worker/imap/store.py), one SELECT and one INSERT
   for the batch: the worker sorts and reads;
3. enqueue the new leads (after the commit, never before);
4. mark them processed — flag ``\\Seen`` or move to ``processed_folder``;
5. move the watermark (last UID) past the batch, if every message in it was
   committed and marked — written in the next batch's transaction (or at the
   end of the pass), not in one of its own.

A poller killed anywhere in between leaves the watermark where the ledger and
the mailbox agree: the next pass fetches those messages again, finds them in the
ledger (a duplicate at the door), marks them and moves on. Nothing is imported
twice and nothing is skipped. Broken connections, timeouts and server errors are
retried inside the pass with backoff; the next pass continues from the ledger.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from leadrelay.db import transaction
from leadrelay.metrics import count_intake, count_poll, count_settled
from leadrelay.routing import InboxConfig
from leadrelay.runtime import Runtime
from leadrelay.unit_of_work import Publish, unit_of_work
from leadrelay.worker.imap import state
from leadrelay.worker.imap.connection import open_session
from leadrelay.worker.imap.errors import InboxError
from leadrelay.worker.imap.intake import UNROUTED, Outcome, Place, Recorded, Size
from leadrelay.worker.imap.reroute import reroute
from leadrelay.worker.imap.session import Fetched, ImapSession
from leadrelay.worker.imap.store import store_messages
from leadrelay.worker.imap.tokens import LedgerTokens

log = structlog.get_logger(__name__)

Enqueue = Publish


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Reconnects inside one pass after a failure that may pass (counted per stall)."""

    attempts: int = 4
    first_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.first_delay * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


@dataclass
class PollReport:
    """What one pass did to one inbox."""

    inbox: str
    marks: str  # what "processed" means for this inbox: flagged \Seen, or moved
    new: int = 0  # stored for the workers, who sort and read them
    duplicate: int = 0
    failed: int = 0  # too big to read: a dead letter at the door
    marked: int = 0
    left: int = 0  # found but not handled in this pass; the next pass takes them
    retries: int = 0
    rescanned: bool = False  # UIDVALIDITY changed: the folder was scanned again from the start
    rerouted: int = 0  # earlier unrouted mail the routing file now assigns, replayed
    lead_ids: list[int] = field(default_factory=list)
    error: str | None = None
    kind: str | None = None  # the error's class (errors.Kind)
    busy: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> dict[str, Any]:
        return {
            "inbox": self.inbox,
            "new": self.new,
            "duplicate": self.duplicate,
            "failed": self.failed,
            "marked": self.marked,
            "left": self.left,
            "retries": self.retries,
            "rescanned": self.rescanned,
            "rerouted": self.rerouted,
            "error": self.error,
            "kind": self.kind,
        }


def lease_seconds(config: InboxConfig) -> float:
    """Long enough for a reconnect and a batch, each socket operation bounded by the timeout."""
    return max(120.0, 8 * config.timeout_seconds)


def _parts(
    imap: ImapSession, uids: list[int], size: int, *, limit: int, most: int
) -> Iterator[tuple[list[int], dict[int, int]]]:
    """``uids`` in batches of ``size``, each cut where its messages' bytes pass ``most``.

    Yields each part's UIDs with the sizes of its batch (asked once a batch; a UID
    the server no longer lists has none, and counts nothing). A message counts what is
    fetched of it (at most ``limit + 1`` bytes); a part holds at least one. So no
    batch brings more than ``most`` bytes into memory and into one INSERT (fifty
    mails at the size limit would be over a gigabyte: more than one Postgres
    message can carry, the same failure on every pass).
    """
    for start in range(0, len(uids), size):
        batch = uids[start : start + size]
        sizes = imap.sizes(batch)
        part: list[int] = []
        held = 0
        for uid in batch:
            fetched = min(sizes.get(uid, 0), limit + 1)
            if part and held + fetched > most:
                yield part, sizes
                part, held = [], 0
            part.append(uid)
            held += fetched
        yield part, sizes


@dataclass
class _Pass:
    rt: Runtime
    name: str
    config: InboxConfig
    owner: str
    enqueue: Enqueue
    retry: RetryPolicy
    deadline: float | None
    report: PollReport
    outcomes: dict[tuple[int, int], Outcome] = field(default_factory=dict)
    marked: set[tuple[int, int]] = field(default_factory=set)
    found: set[tuple[int, int]] = field(default_factory=set)
    behind: tuple[int, int] | None = None  # (UIDVALIDITY, UID) the watermark may move to, not yet written

    @property
    def tokens(self) -> LedgerTokens | None:
        if self.config.oauth2 is None or self.config.oauth2.grant != "refresh_token":
            return None
        return LedgerTokens(self.rt.sessions, self.name, self.config.oauth2, f"inboxes.{self.name}.oauth2")

    def hold(self, session: Session) -> None:
        """Renew the lease, or stop: a pass that outlived it has been taken over."""
        if not state.renew(session, self.name, owner=self.owner, lease_seconds=lease_seconds(self.config)):
            raise InboxError(
                "this pass outlived its lease and another poller took the inbox over; it continues there",
                retryable=False,
                kind="lease",
            )

    def renew(self) -> None:
        with transaction(self.rt.sessions) as session:
            self.hold(session)

    def start(self, uidvalidity: int) -> int:
        """The last UID handled in this folder; 0 when its UIDVALIDITY changed."""
        with transaction(self.rt.sessions) as session:
            mark = state.watermark(session, self.name)
            if mark.uidvalidity == uidvalidity:
                return mark.last_uid
            state.rebase(session, self.name, owner=self.owner, uidvalidity=uidvalidity)
        if mark.uidvalidity is not None:
            self.report.rescanned = True
            log.info("inbox_uidvalidity_changed", inbox=self.name, was=mark.uidvalidity, now=uidvalidity)
        return 0

    def commit(self, uidvalidity: int, fetched: dict[int, Fetched]) -> list[Recorded]:
        """One unit of work: the batch's new leads are enqueued once it has committed."""
        limit = self.rt.settings.max_message_bytes
        with unit_of_work(self.rt, publish=self.enqueue) as uow:
            self.hold(uow.session)
            self.write_watermark(uow.session)
            found = [
                (
                    message.raw,
                    Place(self.name, self.config.folder, uidvalidity, uid),
                    Size(message.size, limit),
                )
                for uid, message in sorted(fetched.items())
            ]
            recorded = store_messages(
                uow.session, found, routing=self.rt.routing, default=self.config.channel
            )
            uow.enqueue(*(i for r in recorded for i in r.for_worker))
        self.behind = None  # written with the batch: gone only once it committed
        return recorded

    def mark(self, imap: ImapSession, uids: list[int]) -> None:
        if self.config.processed_folder:
            imap.move(uids, self.config.processed_folder)
        else:
            imap.mark_seen(uids)

    def advance(self, uidvalidity: int, last_uid: int) -> None:
        """The watermark may move past ``last_uid``: written with the next batch, or by :meth:`settle`."""
        self.behind = (uidvalidity, last_uid)

    def write_watermark(self, session: Session) -> None:
        if self.behind is not None:
            uidvalidity, last_uid = self.behind
            state.advance(session, self.name, owner=self.owner, uidvalidity=uidvalidity, last_uid=last_uid)

    def settle(self) -> None:
        """Write the watermark still behind (no batch follows to carry it)."""
        if self.behind is not None:
            with transaction(self.rt.sessions) as session:
                self.write_watermark(session)
            self.behind = None

    def settle_after_ledger_error(self) -> None:
        """:meth:`settle` while a ledger error ends the pass: that error is the one raised."""
        try:
            self.settle()
        except SQLAlchemyError as exc:
            log.warning("inbox_watermark_not_written", inbox=self.name, error=type(exc).__name__)

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


def _drain(p: _Pass, imap: ImapSession, batch_size: int) -> None:
    status = imap.select(p.config.folder)
    if p.config.processed_folder:
        imap.require_folder(p.config.processed_folder, key="processed_folder")
    validity = status.uidvalidity
    uids = imap.uids_after(p.start(validity), uidnext=status.uidnext)
    p.found = {(validity, uid) for uid in uids}
    complete = True  # every UID so far is committed and marked: the watermark may follow
    limit = p.rt.settings.max_message_bytes
    for chunk, sizes in _parts(imap, uids, batch_size, limit=limit, most=p.rt.settings.max_batch_bytes):
        if p.past_deadline():
            return
        fetched = imap.fetch_within(chunk, limit, sizes=sizes)
        recorded = p.commit(validity, fetched) if fetched else []
        _count(recorded)
        p.report.lead_ids.extend(i for r in recorded for i in r.for_worker)
        if recorded:
            p.mark(imap, [r.uid for r in recorded])
            p.marked.update((validity, r.uid) for r in recorded)
        # a UID the server did not return (expunged meanwhile?) holds the watermark back:
        # the next pass looks again, and a message that is really gone is no longer listed
        complete = complete and len(recorded) == len(chunk)
        if complete:
            p.advance(validity, chunk[-1])
        for r in recorded:
            p.outcomes.setdefault((validity, r.uid), r.settled or Outcome.new)


def _count(recorded: list[Recorded]) -> None:
    """Duplicates and refusals at the door; a stored mail is counted by the worker that sorts it."""
    for r in recorded:
        channel = r.channel or UNROUTED
        if r.settled is Outcome.duplicate:
            count_intake(channel, "email", duplicate=True)
        elif r.settled is Outcome.failed:
            count_intake(channel, "email", duplicate=False)
            count_settled(channel, "dead", r.reason.value)


def _run(p: _Pass) -> None:
    attempt, batch_size = 0, p.config.batch_size
    while True:
        handled = len(p.marked)
        try:
            with open_session(p.name, p.config, p.tokens) as imap:
                _drain(p, imap, batch_size)
            p.settle()
            return
        except SQLAlchemyError:
            p.settle_after_ledger_error()
            raise
        except InboxError as err:
            p.settle()  # what was marked before the failure stays behind the watermark
            attempt = 1 if len(p.marked) > handled else attempt + 1
            if not err.retryable or attempt > p.retry.attempts:
                raise
            p.report.retries += 1
            batch_size = max(1, batch_size // 2)  # isolates a message that breaks the connection
            log.warning("inbox_retry", inbox=p.name, attempt=attempt, reason=str(err))
            time.sleep(p.retry.delay(attempt))
            p.renew()


def _reroute(p: _Pass) -> None:
    with unit_of_work(p.rt, publish=p.enqueue) as uow:
        queued = reroute(uow.session, inbox=p.name, routing=p.rt.routing, default=p.config.channel)
        uow.enqueue(*queued)
    p.report.rerouted = len(queued)


def _tally(p: _Pass) -> None:
    counts = Counter(p.outcomes.values())
    report = p.report
    report.new, report.duplicate, report.failed = (
        counts[Outcome.new],
        counts[Outcome.duplicate],
        counts[Outcome.failed],
    )
    report.marked = len(p.marked)
    report.left = len(p.found - p.marked)


def poll_inbox(
    rt: Runtime,
    name: str,
    *,
    enqueue: Enqueue,
    retry: RetryPolicy | None = None,
    max_seconds: float | None = None,
    owner: str | None = None,
) -> PollReport:
    """One pass over inbox ``name``; the report's ``error`` says why it could not finish.

    ``max_seconds`` stops starting new batches after that long (the rest is left
    for the next pass). Ledger errors propagate: nothing was marked for them.
    """
    config = rt.routing.inboxes.get(name)
    if config is None:
        known = ", ".join(sorted(rt.routing.inboxes)) or "none"
        return PollReport(inbox=name, marks="", error=f"no inbox named {name!r} (configured: {known})")
    marks = f"moved to {config.processed_folder}" if config.processed_folder else "flagged \\Seen"
    p = _Pass(
        rt=rt,
        name=name,
        config=config,
        owner=owner or state.new_owner(),
        enqueue=enqueue,
        retry=retry or RetryPolicy(),
        deadline=time.monotonic() + max_seconds if max_seconds else None,
        report=PollReport(inbox=name, marks=marks),
    )
    source = f"{config.username}@{config.host}:{config.port}/{config.folder}"
    with transaction(rt.sessions) as session:
        if not state.acquire(
            session, name, source=source, owner=p.owner, lease_seconds=lease_seconds(config)
        ):
            until = state.held_until(session, name)
            when = f" (its lease runs until {until:%H:%M:%S} UTC)" if until else ""
            p.report.error = f"another poller is working on this inbox{when}: try again then"
            p.report.busy = True
            return p.report
    error: str | None = None
    kind: str | None = None
    try:
        _reroute(p)
        _run(p)
    except InboxError as err:
        error, kind = p.report.error, p.report.kind = str(err), err.kind
    finally:
        _tally(p)
        with transaction(rt.sessions) as session:
            state.release(session, name, owner=p.owner, error=error, kind=kind, imported=p.report.new)
    count_poll(name, kind or "ok")
    if error:
        log.warning("inbox_poll_failed", inbox=name, kind=kind, reason=error, **_counts(p.report))
    else:
        log.info("inbox_polled", inbox=name, **_counts(p.report))
    return p.report


def _counts(report: PollReport) -> dict[str, Any]:
    return {k: v for k, v in report.summary().items() if k not in ("inbox", "error", "kind")}
