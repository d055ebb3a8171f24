"""One run's decisions: which opportunity the lead becomes, or which one it is a note on.

In order: the opportunity an earlier create of this enquiry made (looked up once
that create can no longer land), a note on the first introduction's opportunity,
a note on an open one staff made for a known customer, else a new one.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy.exc import SQLAlchemyError

from leadrelay import ledger
from leadrelay.db import LEDGER_UNREACHABLE
from leadrelay.driver import Unit
from leadrelay.errors import ConfigurationError, UpstreamError
from leadrelay.models import DeadReason, Lead
from leadrelay.nexudus.classify import Outcome as Answer
from leadrelay.nexudus.classify import Result
from leadrelay.nexudus.client import NexudusClient
from leadrelay.nexudus.payloads import Route, channel_label, opportunity_payload
from leadrelay.worker import assignment, dedupe
from leadrelay.worker.delivery import customers, notes, policy, staff
from leadrelay.worker.delivery.attempts import Hold, LostLease
from leadrelay.worker.delivery.outcome import Outcome
from leadrelay.worker.delivery.route import resolve_route

log = structlog.get_logger(__name__)

CREATE_OPPORTUNITY = "opportunity.create"


@dataclass(frozen=True, slots=True)
class Known:
    """What the ledger knows before any call.

    The first introduction (None: this lead is the first), else the contact's cached coworker id.
    """

    first: Lead | None
    cached: int | None


class ReadsBroke(UpstreamError):
    """The reads before the first call failed in the database: the claim's transaction is lost with them."""


class Delivery:
    """One delivery run of a leased lead, from its route to how it ended.

    :meth:`prepare` runs in the claim's transaction, so that its reads and the
    introduction's decision take no transaction of their own; :meth:`run` after it.
    """

    def __init__(self, hold: Hold) -> None:
        self.hold = hold
        self._route: Route | str | None = None
        self._client: NexudusClient | ConfigurationError | None = None
        self._known: Known | Exception | None = None

    def prepare(self, work: Unit | None) -> None:
        """The route, the account's client and what the ledger knows (:class:`Known`), in ``work``.

        Only as far as the run will go: no reads for a lead without a route or a client.
        A bug here is kept for :meth:`run` to report, as one in the calls is, and the
        claim commits all the same, so that the run is counted. A database error in the
        reads aborts the claim's transaction: :class:`ReadsBroke`, for the caller to claim
        again and call this with no ``work``: then :meth:`run` reads in a transaction of
        its own, as it did before the reads rode with the claim.
        """
        hold = self.hold
        try:
            self._route = route = resolve_route(hold.rt.routing, hold.s.channel, hold.s.lead)
            if isinstance(route, str):
                return
            self._client = hold.rt.nexudus(route.account)
        except ConfigurationError as err:
            self._client = err
            return
        except Exception as exc:
            self._known = exc
            return
        if work is None:
            return
        try:
            self._known = self._read(work, route.account)
        except LEDGER_UNREACHABLE:
            raise
        except SQLAlchemyError as exc:
            raise ReadsBroke() from exc
        except Exception as exc:
            self._known = exc

    def run(self) -> Outcome:
        hold, route, client, known = self.hold, self._route, self._client, self._known
        if isinstance(known, Exception):
            return self._internal(known)
        if isinstance(route, str):
            return policy.dead(hold, DeadReason.routing, route, {"listing": hold.s.lead.listing.id})
        if isinstance(client, ConfigurationError):
            return policy.failed(hold, Result(Answer.pause, message=str(client)), call="configuration")
        assert route is not None and client is not None, "prepare() first"
        try:
            if known is None:  # the claim's transaction did not carry the reads
                with hold.work() as work:
                    known = self._read(work, route.account)
            return self._deliver(client, route, known)
        except (LostLease, SQLAlchemyError):
            raise
        except Exception as exc:
            return self._internal(exc)

    def _internal(self, exc: Exception) -> Outcome:
        """A bug must not lose the lead: retry, then dead-letter."""
        log.error("delivery_error", lead_id=self.hold.s.id, exc_info=exc)
        return policy.failed(
            self.hold, Result(Answer.retry, message=f"internal error: {type(exc).__name__}"), "internal"
        )

    def _deliver(self, client: NexudusClient, route: Route, known: Known) -> Outcome:
        hold = self.hold
        first, cached = known.first, known.cached
        if hold.s.create_sent_at is not None:
            # A create this enquiry sent may have made its opportunity: that one comes
            # first — before a note on another broker's, before a new one.
            if hold.s.landing_wait > 0:
                # looking now could miss a create still on its way: look once it cannot be
                return policy.wait(
                    hold, hold.s.landing_wait, "a create sent earlier may still land in Nexudus"
                )
            tag = self._tag(route)
            made = hold.call(
                "opportunity.find",
                lambda guard: client.find_opportunity(tag.name, tag.system_id, guard=guard),
            )
            if not made.ok:
                return policy.failed(hold, made, call="opportunity.find")
            if made.value is not None:
                return policy.delivered(hold, made.value.get("CoworkerId"), made.value["Id"], tag.name)
        if first is not None:
            return notes.attach_to_first(hold, client, route, first)
        found = (cached, True) if cached is not None else customers.find_or_create(hold, client, route)
        if isinstance(found, Result):
            return policy.failed(hold, found, call="coworker")
        coworker, known_customer = found
        tag = self._tag(route)

        if known_customer and hold.rt.routing.defaults.reuse_open_opportunities:
            staffs = staff.open_opportunity_by_others(hold, client, route, coworker)
            if isinstance(staffs, Result):
                return policy.failed(hold, staffs, call="opportunity.open")
            if staffs is not None:
                return notes.attach(hold, client, route, staffs, heading="New enquiry", first=None)

        created = self._create(client, route, coworker, tag)
        if created.outcome is Answer.pause and created.fresh_token:
            # Nexudus answers 401 when a write names a deleted record: the cached
            # coworker may be gone. Find or create it again, then try once more.
            customers.forget(hold, route.account)
            again = customers.find_or_create(hold, client, route)
            if isinstance(again, Result):
                return policy.failed(hold, again, call="coworker")
            coworker = again[0]
            created = self._create(client, route, coworker, tag)
        if not created.ok:
            return policy.failed(hold, created, call=CREATE_OPPORTUNITY)
        return policy.delivered(hold, coworker, created.value, tag.name)

    def _read(self, work: Unit, account: str) -> Known:
        """The lead whose opportunity this one belongs to, else the contact's cached coworker id."""
        first = notes.first_introduction(self.hold, work)
        if first is not None:
            return Known(first, None)
        return Known(None, customers.cached(work, account, self.hold.s.lead.contact.email))

    def _tag(self, route: Route) -> ledger.CreateTag:
        """How Nexudus knows this enquiry: as a create may already have named it, else as it would."""
        s = self.hold.s
        if s.create_sent_at is not None and s.opportunity_name and s.system_id:
            return ledger.CreateTag(s.opportunity_name, s.system_id)
        label = channel_label(route.channel, route.channel_config)
        return dedupe.tag_for(
            s.lead,
            channel=s.channel,
            fingerprint=s.fingerprint,
            label=label,
            template=route.mapping.name_template,
            location=route.location,
        )

    def _create(self, client: NexudusClient, route: Route, coworker: int, tag: ledger.CreateTag) -> Result:
        s = self.hold.s
        body = opportunity_payload(
            s.lead,
            route,
            coworker_id=coworker,
            name=tag.name,
            system_id=tag.system_id,
            lead_id=s.id,
            received_at=s.received_at,
        )
        # picked once per enquiry, in Postgres (worker/assignment.py); no transaction without a rule
        responsible = assignment.responsible_id(
            self.hold.tx, self.hold.rt.routing, route, enquiry=tag.system_id, lead_id=s.id
        )
        if responsible is not None:
            body["ResponsibleId"] = responsible
        return self.hold.call(
            CREATE_OPPORTUNITY,
            lambda guard: client.create_opportunity(body, guard=guard),
            creating=tag,
        )
