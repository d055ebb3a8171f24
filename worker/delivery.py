"""Stage 2: a normalised lead becomes one Coworker (found or created) and one CrmOpportunity.

At most one opportunity per lead, ever:

* the lead is leased by a guarded UPDATE, so two workers never deliver it at once;
* every write to Nexudus is recorded as an attempt row and committed *before* it
  is sent; a create whose answer was lost (timeout, reset, 5xx, a killed worker)
  leaves that row behind, and the next delivery looks the opportunity up by its
  Name tag before it sends anything;
* the lease is renewed, and checked, right before every write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from leadrelay import ledger
from leadrelay.canonical import CanonicalLead
from leadrelay.db import insert_for, transaction, utcnow
from leadrelay.models import CoworkerCache, DeadReason, DeliveryAttempt, Lead, LeadState
from leadrelay.nexudus.classify import Outcome, Result
from leadrelay.nexudus.client import NexudusClient
from leadrelay.nexudus.payloads import (
    Route,
    channel_label,
    coworker_payload,
    opportunity_name,
    opportunity_payload,
)
from leadrelay.routing import Routing
from leadrelay.runtime import ConfigurationError, Runtime
from worker import dedupe
from worker.dispatch import Claim, claim
from worker.retry import next_attempt

log = structlog.get_logger(__name__)

CREATE_OPPORTUNITY = "opportunity.create"


class LostLease(Exception):
    """Another worker took the lead over (our lease expired): stop, write nothing."""


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
    try:
        return _Delivery(rt, snapshot, owner).run()
    except LostLease:
        log.warning("lease_lost", lead_id=lead_id)
        return "lost_lease"


class _Delivery:
    def __init__(self, rt: Runtime, snapshot: Snapshot, owner: str) -> None:
        self.rt = rt
        self.s = snapshot
        self.owner = owner

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
        coworker = self._coworker(client, route)
        if isinstance(coworker, Result):
            return self._failed(coworker, call="coworker")
        label = channel_label(route.channel, route.channel_config)
        name = opportunity_name(label, self.s.lead.external_id or self.s.fingerprint[:12])
        system_id = dedupe.system_id(self.s.lead, channel=self.s.channel, fingerprint=self.s.fingerprint)

        if self._create_may_have_happened():
            found = self._call(
                "opportunity.find", lambda: client.find_opportunity(name, system_id), write=False
            )
            if not found.ok:
                return self._failed(found, call="opportunity.find")
            if found.value is not None:
                return self._delivered(coworker, found.value, name)

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
            coworker = self._coworker(client, route)
            if isinstance(coworker, Result):
                return self._failed(coworker, call="coworker")
            created = self._call(
                CREATE_OPPORTUNITY, lambda: client.create_opportunity(payload(coworker)), write=True
            )
        if not created.ok:
            return self._failed(created, call=CREATE_OPPORTUNITY)
        return self._delivered(coworker, created.value, name)

    # ---- coworker --------------------------------------------------------------

    def _coworker(self, client: NexudusClient, route: Route) -> int | Result:
        email = self.s.lead.contact.email
        if email:
            with transaction(self.rt.sessions) as session:
                cached = session.get(CoworkerCache, (route.account, email))
                if cached is not None:
                    return cached.coworker_id
            found = self._call("coworker.find", lambda: client.find_coworker(email), write=False)
            if not found.ok:
                return found
            if found.value is not None:
                self._remember_coworker(route.account, email, found.value)
                return int(found.value)
        body = coworker_payload(self.s.lead, route)
        created = self._call("coworker.create", lambda: client.create_coworker(body), write=True)
        if not created.ok:
            return created
        if email:
            self._remember_coworker(route.account, email, created.value)
        return int(created.value)

    def _remember_coworker(self, account: str, email: str, coworker_id: int) -> None:
        with transaction(self.rt.sessions) as session:
            stmt = insert_for(session, CoworkerCache).values(
                account=account, email=email, coworker_id=coworker_id, updated_at=utcnow()
            )
            session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["account", "email"],
                    set_={"coworker_id": coworker_id, "updated_at": utcnow()},
                )
            )

    def _forget_coworker(self, account: str) -> None:
        email = self.s.lead.contact.email
        if not email:
            return
        with transaction(self.rt.sessions) as session:
            session.execute(
                delete(CoworkerCache).where(CoworkerCache.account == account, CoworkerCache.email == email)
            )

    # ---- calls and attempts -----------------------------------------------------

    def _create_may_have_happened(self) -> bool:
        """A create was sent before and its outcome is not known to be a refusal."""
        with transaction(self.rt.sessions) as session:
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
        with transaction(self.rt.sessions) as session:
            if not ledger.renew_lease(
                session, self.s.id, owner=self.owner, lease_seconds=self.rt.settings.lease_seconds
            ):
                raise LostLease()
            attempt_id = ledger.start_attempt(session, self.s.id, call).id if write else None
        started = utcnow()
        result = send()
        if result.status_code is None and result.outcome is Outcome.throttle:
            # our own budget said wait: nothing was sent, nothing to record
            if attempt_id is not None:
                with transaction(self.rt.sessions) as session:
                    session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.id == attempt_id))
            return result
        recorded = "unknown" if result.maybe_committed else result.outcome.value
        error = None if result.ok else result.message
        with transaction(self.rt.sessions) as session:
            if attempt_id is None:
                attempt_id = ledger.start_attempt(session, self.s.id, call, started_at=started).id
            ledger.finish_attempt(
                session,
                attempt_id,
                status_code=result.status_code,
                outcome=recorded,
                error=error,
                response=result.excerpt,
            )
        return result

    # ---- endings ----------------------------------------------------------------

    def _delivered(self, coworker_id: int, opportunity_id: int, name: str) -> str:
        with transaction(self.rt.sessions) as session:
            moved = ledger.transition(
                session,
                self.s.id,
                from_states=[LeadState.delivering],
                to=LeadState.delivered,
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
            # The next owner finds this opportunity by its Name: nothing is duplicated.
            raise LostLease()
        return "delivered"

    def _dead(self, reason: DeadReason, message: str, detail: dict[str, Any]) -> str:
        with transaction(self.rt.sessions) as session:
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
        return self._release(when, result.message, count=True, outcome="retry")

    def _release(self, when: datetime, error: str, *, count: bool, outcome: str) -> str:
        with transaction(self.rt.sessions) as session:
            moved = ledger.release(
                session, self.s.id, owner=self.owner, next_attempt_at=when, error=error, count_attempt=count
            )
        if not moved:
            raise LostLease()
        return outcome
