"""Stage 2: a normalised lead becomes one Coworker (found or created) and one CrmOpportunity.

At most one opportunity per enquiry, ever:

* the lead is leased by a guarded UPDATE on the ledger's clock, so two workers
  never deliver it at once;
* right before each request goes out (after the budget's wait, the token and the
  pacing) the lease is renewed and checked, and the request gets a total deadline
  shorter than the lease (:class:`_Guard`, :mod:`leadrelay.nexudus.deadline`): a
  worker that stalls past its lease sends nothing;
* a write's attempt row commits before it is sent; a create also marks the lead
  ``create_sent_at`` with the Name tag and SystemId it is sent under. That mark
  belongs to the enquiry: a replay and an edit keep it, a partner's resend that
  supersedes a dead lead inherits it. A lead carrying it looks the opportunity up
  before creating — and only concludes "not there" once a create sent then can no
  longer land (its deadline plus ``write_landing_seconds``). A definite refusal
  (an answer that created nothing) takes the mark back.

Round trips: a read's attempt row, a write's outcome and the coworker cache are
written in the *next* transaction the delivery opens — the next request's lease
renewal, or the final state change — not in one of their own. Nothing the
exactly-once design relies on waits for them: the create mark commits before
the create is sent, and is only ever taken back after a definite refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from leadrelay import ledger
from leadrelay.canonical import CanonicalLead, first_error
from leadrelay.db import insert_for, transaction, utcnow
from leadrelay.metrics import DEAD, DELIVERED, RETRIES
from leadrelay.models import CoworkerCache, DeadReason, DeliveryAttempt, Lead, LeadState
from leadrelay.nexudus.classify import Outcome, Result
from leadrelay.nexudus.client import NexudusClient, SendGuard
from leadrelay.nexudus.payloads import (
    Route,
    channel_label,
    coworker_payload,
    introduction_note,
    note_marker,
    opportunity_payload,
    with_note,
)
from leadrelay.routing import Routing
from leadrelay.runtime import ConfigurationError, Runtime
from leadrelay.settings import Settings
from leadrelay.worker import dedupe, introductions
from leadrelay.worker.dispatch import Claim, claim
from leadrelay.worker.retry import next_attempt

log = structlog.get_logger(__name__)

CREATE_OPPORTUNITY = "opportunity.create"
WAIT_FOR_FIRST_SECONDS = 3
NOTE_LOCK_WAIT_SECONDS = 1
LEASE_MARGIN = 0.1  # a request must end this share of the lease (at least a second) before it does
_BOARD_COLUMNS: dict[tuple[str, int], set[int]] = {}  # a location's board columns, per process


class LostLease(Exception):
    """Another worker took the lead over (our lease expired): stop, write nothing."""


# built once: a new UPDATE per call cost more CPU to build and cache-key than to send
_FINISH_ATTEMPT = (
    update(DeliveryAttempt)
    .where(DeliveryAttempt.id == bindparam("_id"))
    .values(
        {
            name: bindparam(f"v_{name}", type_=DeliveryAttempt.__table__.c[name].type)
            for name in ("finished_at", "status_code", "outcome", "error", "response")
        }
    )
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What delivery needs from the ledger row, read once under the lease."""

    id: int
    channel: str
    lead: CanonicalLead
    received_at: datetime
    attempts: int
    fingerprint: str
    create_sent_at: datetime | None  # a create may have happened (see the module's docstring)
    opportunity_name: str | None  # the Name tag and SystemId that create was sent under
    system_id: str | None
    landing_wait: float  # seconds until that create can no longer land in Nexudus (0: it cannot)

    @classmethod
    def of(cls, row: Lead, *, landing_wait: float = 0.0) -> Snapshot:
        lead = CanonicalLead.model_validate(row.lead)
        # The enquiry's own time starts the follow-up clock, unless it claims to be
        # later than its arrival here (a portal with a wrong clock).
        enquired = lead.received_at
        if enquired is None or enquired.tzinfo is None or enquired > row.received_at:
            enquired = row.received_at
        return cls(
            id=row.id,
            channel=row.channel,
            lead=lead,
            received_at=enquired,
            attempts=row.attempts,
            fingerprint=row.fingerprint or "",
            create_sent_at=row.create_sent_at,
            opportunity_name=row.opportunity_name,
            system_id=row.system_id,
            landing_wait=landing_wait,
        )


def landing_wait(session: Session, row: Lead, settings: Settings) -> float:
    """Seconds until a create sent at ``row.create_sent_at`` can no longer land (ledger clock)."""
    if row.create_sent_at is None:
        return 0.0
    horizon = timedelta(seconds=settings.nexudus_timeout + settings.write_landing_seconds)
    return max(0.0, (row.create_sent_at + horizon - ledger.db_now(session)).total_seconds())


def resolve_route(routing: Routing, channel: str, lead: CanonicalLead) -> Route | str:
    """Where the lead goes, or why it cannot go anywhere (a ``routing`` dead letter)."""
    config = routing.channels.get(channel)
    if config is None:
        return f"channel {channel!r} is not in the routing file"
    location = routing.location_for(channel, lead.listing.id)
    if location is None:
        return (
            f"listing {lead.listing.id!r} of channel {channel!r} is claimed by no location "
            "and defaults.location is not set"
        )
    loc = routing.locations[location]
    return Route(
        channel=channel,
        channel_config=config,
        location=location,
        location_config=loc,
        account=loc.account,
        agent_id=routing.agent_id(channel, location),
        follow_up_hours=loc.follow_up_hours
        if loc.follow_up_hours is not None
        else routing.defaults.follow_up_hours,
        term_months=routing.defaults.term_months,
    )


def deliver(rt: Runtime, lead_id: int, *, owner: str) -> str:
    """Deliver one lead if it is due; returns what happened (for logs and tests)."""
    settings = rt.settings
    with transaction(rt.sessions) as session:
        claimed = claim(
            session, lead_id, owner=owner, lease_seconds=settings.lease_seconds, routing=rt.routing
        )
        if claimed.status is Claim.busy:
            return "busy"
        if claimed.status is not Claim.claimed:
            return "skipped"
        row = session.get(Lead, lead_id)
        assert row is not None
        if claimed.runs > settings.max_unfinished_runs:
            runs = claimed.runs - 1
            why = f"delivery started {runs} times without finishing" + (
                f" (last error: {row.last_error})" if row.last_error else ""
            )
            return _give_up(
                session, row, owner=owner, message=why, detail={"runs": runs, "error": row.last_error}
            )
        try:
            snapshot = Snapshot.of(row, landing_wait=landing_wait(session, row, settings))
        except ValidationError as err:  # stored by an older version whose rules were looser
            why = f"the lead on record no longer reads as a canonical lead: {first_error(err)}"
            return _give_up(session, row, owner=owner, message=why, detail={"error": "ValidationError"})
    delivery = _Delivery(rt, snapshot, owner)
    try:
        return delivery.run()
    except LostLease:
        log.warning("lease_lost", lead_id=lead_id)
        return "lost_lease"
    finally:
        delivery.flush()


def _give_up(session: Session, row: Lead, *, owner: str, message: str, detail: dict[str, Any]) -> str:
    """The lead cannot be delivered as it is (a crash every time, a record that no longer reads): stop."""
    letter = ledger.kill(
        session,
        row.id,
        from_states=[LeadState.delivering],
        reason=DeadReason.internal,
        message=f"{message}; fix the cause (or edit the lead), then replay",
        detail=detail,
        owner=owner,
    )
    if letter is None:
        return "lost_lease"
    DEAD.labels(channel=row.channel, reason=DeadReason.internal.value).inc()
    log.error("dead_letter_opened", reason=DeadReason.internal.value)
    return "dead"


class _Guard:
    """One call's requests, as the delivery sees them (the client's :class:`SendGuard`).

    Before each request: the lease is renewed on the ledger's clock (LostLease if
    another worker has it), a write's attempt row — and for a create, the lead's
    create mark — commits, and the request is given what is left of the lease
    minus a margin. After it: its outcome rides along with the next transaction.
    """

    def __init__(
        self, delivery: _Delivery, call: str, *, write: bool, creating: ledger.CreateTag | None
    ) -> None:
        self._delivery = delivery
        self._call = call
        self._write = write
        self._creating = creating
        self._attempt_id: int | None = None
        self._started = utcnow()
        self._mark_before: datetime | None = None
        self.sent = False

    def before_send(self, *, write: bool) -> float:
        d = self._delivery
        self._started = utcnow()
        self._mark_before = d.s.create_sent_at
        self._attempt_id = d._lease_for_request(self._call, write=self._write, creating=self._creating)
        if self._creating is not None:
            d.s = replace(d.s, create_sent_at=self._started)  # in memory; the ledger holds its own clock's
        self.sent = True
        lease = d.rt.settings.lease_seconds
        return lease - max(1.0, lease * LEASE_MARGIN)

    def after_send(self, result: Result) -> None:
        self.record(result)
        if self._creating is not None and not result.ok and not result.maybe_committed:
            self._delivery._create_refused(self._mark_before)

    def record(self, result: Result) -> None:
        """The request's outcome: written with the delivery's next transaction."""
        recorded = "unknown" if result.maybe_committed else result.outcome.value
        values = {
            "finished_at": utcnow(),
            "status_code": result.status_code,
            "outcome": recorded,
            "error": None if result.ok else result.message,
            "response": result.excerpt[: ledger.RESPONSE_EXCERPT] if result.excerpt else None,
        }
        if self._attempt_id is None:
            row = insert(DeliveryAttempt).values(
                lead_id=self._delivery.s.id, call=self._call, started_at=self._started, **values
            )
            self._delivery._pending.append(lambda session: session.execute(row))
        else:
            params = {"_id": self._attempt_id, **{f"v_{k}": v for k, v in values.items()}}
            self._delivery._pending.append(
                lambda session: session.connection().execute(_FINISH_ATTEMPT, params)
            )


class _Delivery:
    def __init__(self, rt: Runtime, snapshot: Snapshot, owner: str) -> None:
        self.rt = rt
        self.s = snapshot
        self.owner = owner
        # ledger writes that ride along with the next transaction (see the module's docstring)
        self._pending: list[Callable[[Session], object]] = []

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        """A transaction that first writes what is pending."""
        with transaction(self.rt.sessions) as session:
            pending, self._pending = self._pending, []
            for write in pending:
                write(session)
            yield session

    def flush(self) -> None:
        """Write what is still pending (the delivery ended without a final transaction)."""
        if self._pending:
            with self._tx():
                pass

    def run(self) -> str:
        route = resolve_route(self.rt.routing, self.s.channel, self.s.lead)
        if isinstance(route, str):
            return self._dead(DeadReason.routing, route, {"listing": self.s.lead.listing.id})
        try:
            client = self.rt.nexudus(route.account)
        except ConfigurationError as err:
            return self._failed(Result(Outcome.pause, message=str(err)), call="configuration")
        try:
            return self._deliver(client, route)
        except (LostLease, SQLAlchemyError):
            raise
        except Exception as exc:  # a bug must not lose the lead: retry, then dead-letter
            log.exception("delivery_error", lead_id=self.s.id)
            return self._failed(
                Result(Outcome.retry, message=f"internal error: {type(exc).__name__}"), "internal"
            )

    def _deliver(self, client: NexudusClient, route: Route) -> str:
        first, cached = self._prepare(route.account)
        if self.s.create_sent_at is not None:
            # A create this enquiry sent may have made its opportunity: that one comes
            # first — before a note on another broker's, before a new one.
            if self.s.landing_wait > 0:
                # looking now could miss a create still on its way: look once it cannot be
                return self._wait(self.s.landing_wait, "a create sent earlier may still land in Nexudus")
            tag = self._tag(route)
            made = self._call(
                "opportunity.find",
                lambda guard: client.find_opportunity(tag.name, tag.system_id, guard=guard),
                write=False,
            )
            if not made.ok:
                return self._failed(made, call="opportunity.find")
            if made.value is not None:
                return self._delivered(made.value.get("CoworkerId"), made.value["Id"], tag.name)
        if first is not None:
            return self._attach_to_first(client, route, first)
        found = (cached, True) if cached is not None else self._coworker(client, route)
        if isinstance(found, Result):
            return self._failed(found, call="coworker")
        coworker, known_customer = found
        tag = self._tag(route)

        if known_customer and self.rt.routing.defaults.reuse_open_opportunities:
            staffs = self._open_opportunity_by_others(client, route, coworker)
            if isinstance(staffs, Result):
                return self._failed(staffs, call="opportunity.open")
            if staffs is not None:
                return self._attach(client, route, staffs, heading="New enquiry", first=None)

        created = self._create(client, route, coworker, tag)
        if created.outcome is Outcome.pause and created.fresh_token:
            # Nexudus answers 401 when a write names a deleted record: the cached
            # coworker may be gone. Find or create it again, then try once more.
            self._forget_coworker(route.account)
            again = self._coworker(client, route)
            if isinstance(again, Result):
                return self._failed(again, call="coworker")
            coworker = again[0]
            created = self._create(client, route, coworker, tag)
        if not created.ok:
            return self._failed(created, call=CREATE_OPPORTUNITY)
        return self._delivered(coworker, created.value, tag.name)

    def _tag(self, route: Route) -> ledger.CreateTag:
        """How Nexudus knows this enquiry: as a create may already have named it, else as it would."""
        if self.s.create_sent_at is not None and self.s.opportunity_name and self.s.system_id:
            return ledger.CreateTag(self.s.opportunity_name, self.s.system_id)
        label = channel_label(route.channel, route.channel_config)
        return dedupe.tag_for(
            self.s.lead, channel=self.s.channel, fingerprint=self.s.fingerprint, label=label
        )

    def _create(self, client: NexudusClient, route: Route, coworker: int, tag: ledger.CreateTag) -> Result:
        body = opportunity_payload(
            self.s.lead,
            route,
            coworker_id=coworker,
            name=tag.name,
            system_id=tag.system_id,
            lead_id=self.s.id,
            received_at=self.s.received_at,
        )
        return self._call(
            CREATE_OPPORTUNITY,
            lambda guard: client.create_opportunity(body, guard=guard),
            write=True,
            creating=tag,
        )

    # ---- coworker --------------------------------------------------------------

    def _coworker(self, client: NexudusClient, route: Route) -> tuple[int, bool] | Result:
        """The customer's id, and whether Nexudus knew them before this lead."""
        email = self.s.lead.contact.email
        if email:
            found = self._call(
                "coworker.find", lambda guard: client.find_coworker(email, guard=guard), write=False
            )
            if not found.ok:
                return found
            if found.value is not None:
                self._remember_coworker(route.account, email, found.value)
                return int(found.value), True
        body = coworker_payload(self.s.lead, route)
        created = self._call(
            "coworker.create", lambda guard: client.create_coworker(body, guard=guard), write=True
        )
        if not created.ok:
            return created
        if email:
            self._remember_coworker(route.account, email, created.value)
        return int(created.value), False

    def _remember_coworker(self, account: str, email: str, coworker_id: int) -> None:
        """A cache entry: written with the next transaction (lost with a killed worker: found again)."""

        def remember(session: Session) -> None:
            stmt = insert_for(session, CoworkerCache).values(
                account=account, email=email, coworker_id=coworker_id, updated_at=utcnow()
            )
            session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["account", "email"],
                    set_={"coworker_id": coworker_id, "updated_at": utcnow()},
                )
            )

        self._pending.append(remember)

    def _forget_coworker(self, account: str) -> None:
        email = self.s.lead.contact.email
        if not email:
            return
        with self._tx() as session:
            session.execute(
                delete(CoworkerCache).where(CoworkerCache.account == account, CoworkerCache.email == email)
            )

    # ---- introductions -----------------------------------------------------------

    def _prepare(self, account: str) -> tuple[Lead | None, int | None]:
        """What the ledger knows before any call, read in one transaction.

        The lead whose opportunity this one belongs to (None when this lead is the
        first introduction), and the cached coworker id of the contact's e-mail.
        """
        with self._tx() as session:
            first = self._first_introduction(session)
            if first is not None:
                return first, None
            email = self.s.lead.contact.email
            cached = session.get(CoworkerCache, (account, email)) if email else None
            return None, cached.coworker_id if cached is not None else None

    def _first_introduction(self, session: Session) -> Lead | None:
        """The lead whose opportunity this one belongs to, or None when this lead is the first."""
        row = session.get(Lead, self.s.id)
        assert row is not None
        relation = introductions.relate(session, row, routing=self.rt.routing)
        # a first introduction points at itself: decided, under the person's lock
        decided = relation.first if relation.first is not None else self.s.id
        if decided != row.first_introduction:
            session.execute(
                update(Lead)
                .where(Lead.id == self.s.id, Lead.lease_owner == self.owner)
                .values(first_introduction=decided)
                .execution_options(synchronize_session=False)
            )
        return None if relation.first is None else session.get(Lead, relation.first)

    def _attach_to_first(self, client: NexudusClient, route: Route, first: Lead) -> str:
        if first.state != LeadState.delivered or first.opportunity_id is None:
            # the first introduction is not in Nexudus yet: wait for it
            return self._wait(WAIT_FOR_FIRST_SECONDS, f"waiting for lead {first.id}, the first introduction")
        first_channel = self.rt.routing.channels.get(first.channel)
        first_label = channel_label(first.channel, first_channel) if first_channel else first.channel
        reference = f" ref {first.external_id}" if first.external_id else ""
        when = first.received_at.strftime("%Y-%m-%d %H:%M UTC")
        return self._attach(
            client,
            route,
            first.opportunity_id,
            heading="Later introduction",
            first=f"{first_label}{reference} on {when}",
        )

    def _open_opportunity_by_others(
        self, client: NexudusClient, route: Route, coworker: int
    ) -> int | Result | None:
        """An open opportunity someone else (staff, another tool) made for this customer here."""
        found = self._call(
            "opportunity.open", lambda guard: client.open_opportunities(coworker, guard=guard), write=False
        )
        if not found.ok:
            return found
        records = [r for r in found.value if not str(r.get("SystemId") or "").startswith("leadrelay:")]
        if not records:
            return None
        columns = self._board_columns(client, route)
        if isinstance(columns, Result):
            return columns
        mine = [r["Id"] for r in records if r.get("CrmBoardColumnId") in columns]
        return min(mine) if mine else None

    def _board_columns(self, client: NexudusClient, route: Route) -> set[int] | Result:
        column = route.location_config.board_column_id
        key = (route.account, column)
        if key not in _BOARD_COLUMNS:
            found = self._call(
                "board.columns", lambda guard: client.board_columns(column, guard=guard), write=False
            )
            if not found.ok:
                return found
            _BOARD_COLUMNS[key] = set(found.value)
        return _BOARD_COLUMNS[key]

    def _attach(
        self, client: NexudusClient, route: Route, opportunity_id: int, *, heading: str, first: str | None
    ) -> str:
        """Append this lead as a note to an existing opportunity, one writer at a time.

        Nexudus has no conditional update: two GET–merge–PUTs interleaving would
        lose a note, so they take turns under a lock in the ledger (one that expires,
        so a killed worker cannot keep it).
        """
        lock = {"account": route.account, "opportunity_id": opportunity_id, "owner": self.owner}
        with self._tx() as session:
            taken = ledger.lock_opportunity(session, **lock, seconds=self.rt.settings.lease_seconds)
        if not taken:
            return self._wait(
                NOTE_LOCK_WAIT_SECONDS, f"opportunity {opportunity_id} is being updated by another lead"
            )
        try:
            return self._append_note(client, route, opportunity_id, heading=heading, first=first)
        finally:
            with self._tx() as session:
                ledger.unlock_opportunity(session, **lock)

    def _append_note(
        self, client: NexudusClient, route: Route, opportunity_id: int, *, heading: str, first: str | None
    ) -> str:
        """GET the opportunity, merge the note, PUT the whole record (Nexudus validates PUT whole)."""
        got = self._call(
            "opportunity.get", lambda guard: client.get_opportunity(opportunity_id, guard=guard), write=False
        )
        if not got.ok:
            return self._failed(got, call="opportunity.get")
        record = dict(got.value or {})
        if note_marker(self.s.id) not in (record.get("Notes") or ""):
            label = channel_label(route.channel, route.channel_config)
            note = introduction_note(
                self.s.lead,
                label=label,
                lead_id=self.s.id,
                received_at=self.s.received_at,
                first=first,
                heading=heading,
            )
            merged = with_note(record, note)
            updated = self._call(
                "opportunity.update", lambda guard: client.update_opportunity(merged, guard=guard), write=True
            )
            if not updated.ok:
                return self._failed(updated, call="opportunity.update")
        return self._settle(
            LeadState.attached,
            coworker_id=record.get("CoworkerId"),
            opportunity_id=opportunity_id,
            name=record.get("Name"),
        )

    # ---- calls and attempts -----------------------------------------------------

    def _call(
        self,
        call: str,
        send: Callable[[SendGuard], Result],
        *,
        write: bool,
        creating: ledger.CreateTag | None = None,
    ) -> Result:
        guard = _Guard(self, call, write=write, creating=creating)
        result = send(guard)
        if not guard.sent and not (result.status_code is None and result.outcome is Outcome.throttle):
            guard.record(result)  # nothing reached the API (the login failed): on record all the same
        return result

    def _lease_for_request(self, call: str, *, write: bool, creating: ledger.CreateTag | None) -> int | None:
        """Renew the lease right before a request: the attempt row of a write, if any (LostLease: gone)."""
        with self._tx() as session:
            renewed = ledger.renew_lease(
                session,
                self.s.id,
                owner=self.owner,
                lease_seconds=self.rt.settings.lease_seconds,
                creating=creating,
            )
            # a write's attempt row commits before the write is sent
            attempt_id = ledger.start_attempt(session, self.s.id, call) if write and renewed else None
        if not renewed:
            raise LostLease()
        return attempt_id

    def _create_refused(self, previous: datetime | None) -> None:
        """A create answered with a refusal (nothing made): may-have-happened is what it was before."""
        self.s = replace(self.s, create_sent_at=previous)
        lead_id, owner = self.s.id, self.owner
        self._pending.append(
            lambda session: ledger.restore_create_sent(session, lead_id, owner=owner, sent_at=previous)
        )

    # ---- endings ----------------------------------------------------------------

    def _delivered(self, coworker_id: int | None, opportunity_id: int, name: str) -> str:
        return self._settle(
            LeadState.delivered, coworker_id=coworker_id, opportunity_id=opportunity_id, name=name
        )

    def _settle(
        self, state: LeadState, *, coworker_id: int | None, opportunity_id: int, name: str | None
    ) -> str:
        with self._tx() as session:
            moved = ledger.transition(
                session,
                self.s.id,
                from_states=[LeadState.delivering],
                to=state,
                owner=self.owner,
                coworker_id=coworker_id,
                opportunity_id=opportunity_id,
                opportunity_name=name,
                delivered_at=utcnow(),
                lease_owner=None,
                lease_until=None,
                last_error=None,
                unfinished_runs=0,
            )
        if not moved:
            # The next owner finds this opportunity by its Name (or its note by the
            # marker): nothing is duplicated.
            raise LostLease()
        kind = "opportunity" if state is LeadState.delivered else "note"
        DELIVERED.labels(channel=self.s.channel, kind=kind).inc()
        log.info("lead_delivered", kind=kind, opportunity_id=opportunity_id)
        return state.value

    def _dead(self, reason: DeadReason, message: str, detail: dict[str, Any]) -> str:
        with self._tx() as session:
            letter = ledger.kill(
                session,
                self.s.id,
                from_states=[LeadState.delivering],
                reason=reason,
                message=message,
                detail=detail,
                owner=self.owner,
            )
        if letter is None:
            raise LostLease()
        DEAD.labels(channel=self.s.channel, reason=reason.value).inc()
        log.warning("dead_letter_opened", reason=reason.value, dead_letter_id=letter.id)
        return "dead"

    def _failed(self, result: Result, call: str) -> str:
        detail = {
            "call": call,
            "status": result.status_code,
            "message": result.message,
            "errors": result.errors,
            "response": result.excerpt,
        }
        now = utcnow()
        if result.outcome is Outcome.throttle:
            wait = result.retry_after or 1.0
            return self._release(
                now + timedelta(seconds=wait), result.message, count=False, outcome="throttled"
            )
        if result.outcome is Outcome.dead:
            return self._dead(DeadReason.validation, result.message, detail)
        failures = self.s.attempts + 1
        settings = self.rt.settings
        when = next_attempt(
            failures=failures, schedule=settings.retry_schedule, jitter=settings.retry_jitter, now=now
        )
        if when is None:
            reason = DeadReason.auth if result.outcome is Outcome.pause else DeadReason.exhausted
            return self._dead(reason, f"gave up after {failures} attempts: {result.message}", detail)
        outcome = self._release(when, result.message, count=True, outcome="retry")
        RETRIES.labels(call=call).inc()
        log.info("delivery_retry", call=call, status=result.status_code, failures=failures)
        return outcome

    def _wait(self, seconds: float, why: str) -> str:
        """Hand the lead back for a moment, without counting a failed attempt."""
        return self._release(utcnow() + timedelta(seconds=seconds), why, count=False, outcome="waiting")

    def _release(self, when: datetime, error: str, *, count: bool, outcome: str) -> str:
        with self._tx() as session:
            moved = ledger.release(
                session, self.s.id, owner=self.owner, next_attempt_at=when, error=error, count_attempt=count
            )
        if not moved:
            raise LostLease()
        return outcome
