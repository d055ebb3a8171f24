"""Stage 2: a normalised lead becomes one Coworker (found or created) and one CrmOpportunity.

At most one opportunity per lead, ever:

* the lead is leased by a guarded UPDATE, so two workers never deliver it at once;
* every write to Nexudus is recorded as an attempt row and committed *before* it
  is sent; a create whose answer was lost (timeout, reset, 5xx, a killed worker)
  leaves that row behind, and the next delivery looks the opportunity up by its
  Name tag before it sends anything;
* the lease is renewed, and checked, right before every write.

Round trips: a call's outcome (its attempt row) and the coworker cache are
written in the *next* transaction the delivery opens — the next call's lease
renewal, or the final state change — not in one of their own. Nothing the
exactly-once design relies on waits for them: a create's attempt row is still
committed before it is sent, and an attempt left without an outcome (a worker
killed before the next transaction) reads as "may have happened", so the next
delivery looks the opportunity up first, as after a lost answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from leadrelay import ledger
from leadrelay.canonical import CanonicalLead
from leadrelay.db import insert_for, transaction, utcnow
from leadrelay.metrics import DEAD, DELIVERED, RETRIES
from leadrelay.models import CoworkerCache, DeadReason, DeliveryAttempt, Lead, LeadState
from leadrelay.nexudus.classify import Outcome, Result
from leadrelay.nexudus.client import NexudusClient
from leadrelay.nexudus.payloads import (
    Route,
    channel_label,
    coworker_payload,
    introduction_note,
    note_marker,
    opportunity_name,
    opportunity_payload,
    with_note,
)
from leadrelay.routing import Routing
from leadrelay.runtime import ConfigurationError, Runtime
from worker import dedupe, introductions
from worker.dispatch import Claim, claim
from worker.retry import next_attempt

log = structlog.get_logger(__name__)

CREATE_OPPORTUNITY = "opportunity.create"
WAIT_FOR_FIRST_SECONDS = 3
NOTE_LOCK_WAIT_SECONDS = 1
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

    @classmethod
    def of(cls, row: Lead) -> Snapshot:
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
        )


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
    with transaction(rt.sessions) as session:
        claimed = claim(
            session, lead_id, owner=owner, lease_seconds=rt.settings.lease_seconds, routing=rt.routing
        )
        if claimed is Claim.busy:
            return "busy"
        if claimed is not Claim.claimed:
            return "skipped"
        row = session.get(Lead, lead_id)
        assert row is not None
        snapshot = Snapshot.of(row)
    delivery = _Delivery(rt, snapshot, owner)
    try:
        return delivery.run()
    except LostLease:
        log.warning("lease_lost", lead_id=lead_id)
        return "lost_lease"
    finally:
        delivery.flush()


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
        first, cached, create_sent = self._prepare(route.account)
        if first is not None:
            return self._attach_to_first(client, route, first)
        found = (cached, True) if cached is not None else self._coworker(client, route)
        if isinstance(found, Result):
            return self._failed(found, call="coworker")
        coworker, known_customer = found
        label = channel_label(route.channel, route.channel_config)
        name = opportunity_name(label, self.s.lead.external_id or self.s.fingerprint[:12])
        system_id = dedupe.system_id(self.s.lead, channel=self.s.channel, fingerprint=self.s.fingerprint)

        if create_sent:
            found = self._call(
                "opportunity.find", lambda: client.find_opportunity(name, system_id), write=False
            )
            if not found.ok:
                return self._failed(found, call="opportunity.find")
            if found.value is not None:
                return self._delivered(coworker, found.value, name)

        if known_customer and self.rt.routing.defaults.reuse_open_opportunities:
            staffs = self._open_opportunity_by_others(client, route, coworker)
            if isinstance(staffs, Result):
                return self._failed(staffs, call="opportunity.open")
            if staffs is not None:
                return self._attach(client, route, staffs, heading="New enquiry", first=None)

        def payload(coworker_id: int) -> dict[str, Any]:
            return opportunity_payload(
                self.s.lead,
                route,
                coworker_id=coworker_id,
                name=name,
                system_id=system_id,
                lead_id=self.s.id,
                received_at=self.s.received_at,
            )

        created = self._call(
            CREATE_OPPORTUNITY, lambda: client.create_opportunity(payload(coworker)), write=True
        )
        if created.outcome is Outcome.pause and created.fresh_token:
            # Nexudus answers 401 when a write names a deleted record: the cached
            # coworker may be gone. Find or create it again, then try once more.
            self._forget_coworker(route.account)
            again = self._coworker(client, route)
            if isinstance(again, Result):
                return self._failed(again, call="coworker")
            coworker = again[0]
            created = self._call(
                CREATE_OPPORTUNITY, lambda: client.create_opportunity(payload(coworker)), write=True
            )
        if not created.ok:
            return self._failed(created, call=CREATE_OPPORTUNITY)
        return self._delivered(coworker, created.value, name)

    # ---- coworker --------------------------------------------------------------

    def _coworker(self, client: NexudusClient, route: Route) -> tuple[int, bool] | Result:
        """The customer's id, and whether Nexudus knew them before this lead."""
        email = self.s.lead.contact.email
        if email:
            found = self._call("coworker.find", lambda: client.find_coworker(email), write=False)
            if not found.ok:
                return found
            if found.value is not None:
                self._remember_coworker(route.account, email, found.value)
                return int(found.value), True
        body = coworker_payload(self.s.lead, route)
        created = self._call("coworker.create", lambda: client.create_coworker(body), write=True)
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

    def _prepare(self, account: str) -> tuple[Lead | None, int | None, bool]:
        """What the ledger knows before any call, read in one transaction.

        The lead whose opportunity this one belongs to (None when this lead is the
        first introduction), the cached coworker id of the contact's e-mail, and
        whether a create was sent before (see ``_create_may_have_happened``).
        """
        with self._tx() as session:
            first = self._first_introduction(session)
            if first is not None:
                return first, None, False
            email = self.s.lead.contact.email
            cached = session.get(CoworkerCache, (account, email)) if email else None
            create_sent = self._create_may_have_happened(session)
            return None, cached.coworker_id if cached is not None else None, create_sent

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
        found = self._call("opportunity.open", lambda: client.open_opportunities(coworker), write=False)
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
            found = self._call("board.columns", lambda: client.board_columns(column), write=False)
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
        got = self._call("opportunity.get", lambda: client.get_opportunity(opportunity_id), write=False)
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
            updated = self._call(
                "opportunity.update", lambda: client.update_opportunity(with_note(record, note)), write=True
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

    def _create_may_have_happened(self, session: Session) -> bool:
        """A create was sent before and its outcome is not known to be a refusal."""
        outcome = DeliveryAttempt.outcome
        found = session.execute(
            select(DeliveryAttempt.id)
            .where(
                DeliveryAttempt.lead_id == self.s.id,
                DeliveryAttempt.call == CREATE_OPPORTUNITY,
                outcome.is_(None) | outcome.in_(["unknown", "ok"]),
            )
            .limit(1)
        ).first()
        return found is not None

    def _call(self, call: str, send: Callable[[], Result], *, write: bool) -> Result:
        with self._tx() as session:
            renewed = ledger.renew_lease(
                session, self.s.id, owner=self.owner, lease_seconds=self.rt.settings.lease_seconds
            )
            # a write's attempt row commits before the write is sent
            attempt_id = ledger.start_attempt_id(session, self.s.id, call) if write and renewed else None
        if not renewed:
            raise LostLease()
        started = utcnow()
        result = send()
        if result.status_code is None and result.outcome is Outcome.throttle:
            # our own budget said wait: nothing was sent, nothing to record
            if attempt_id is not None:
                sent_nothing = delete(DeliveryAttempt).where(DeliveryAttempt.id == attempt_id)
                self._pending.append(lambda session: session.execute(sent_nothing))
            return result
        recorded = "unknown" if result.maybe_committed else result.outcome.value
        values = {
            "finished_at": utcnow(),
            "status_code": result.status_code,
            "outcome": recorded,
            "error": None if result.ok else result.message,
            "response": result.excerpt[: ledger.RESPONSE_EXCERPT] if result.excerpt else None,
        }
        if attempt_id is None:
            record = insert(DeliveryAttempt).values(
                lead_id=self.s.id, call=call, started_at=started, **values
            )
            self._pending.append(lambda session: session.execute(record))
        else:
            params = {"_id": attempt_id, **{f"v_{k}": v for k, v in values.items()}}
            self._pending.append(lambda session: session.connection().execute(_FINISH_ATTEMPT, params))
        return result

    # ---- endings ----------------------------------------------------------------

    def _delivered(self, coworker_id: int, opportunity_id: int, name: str) -> str:
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
