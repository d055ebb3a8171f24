"""A twin that carries more than the delivered lead: merged into its opportunity and customer.

The same enquiry through a second door (the portal's e-mail after its webhook) is a
duplicate; when it carries fields the delivered lead lacked (``leadrelay.nexudus.enrichment``)
normalise hands it to delivery instead of settling it, and this run merges them in:
GET, merge, PUT, under the opportunity's one writer lock (the one notes take), writing
a field only where Nexudus still holds what leadrelay last wrote there, or nothing.

Exactly once without a marker: a PUT whose answer was lost left the values in
Nexudus, so the next run finds them there and writes nothing. What each run wrote
is kept on the twin (``leads.written``): the next twin compares with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from leadrelay.canonical import CanonicalLead
from leadrelay.db import utcnow
from leadrelay.driver import Unit
from leadrelay.errors import ConfigurationError
from leadrelay.models import Lead, LeadState
from leadrelay.nexudus import enrichment
from leadrelay.nexudus.classify import Outcome as Answer
from leadrelay.nexudus.classify import Result
from leadrelay.nexudus.client import NexudusClient
from leadrelay.worker.delivery import notes, policy
from leadrelay.worker.delivery.attempts import Hold
from leadrelay.worker.delivery.outcome import Outcome

WAIT_FOR_PRIMARY_SECONDS = 3
_PENDING = (LeadState.received, LeadState.normalised, LeadState.delivering)


def _as_told(lead: dict[str, Any] | None, purged_at: datetime | None) -> CanonicalLead | None:
    """The delivered lead as it was read; None once erased or purged (nothing left to compare)."""
    if lead is None or purged_at is not None:
        return None
    try:
        return CanonicalLead.from_ledger(lead)
    except ValidationError:
        return None


def enriches(session: Session, primary_id: int, twin: CanonicalLead) -> bool:
    """Whether a duplicate of ``primary_id`` should be delivered as an enrichment (normalise asks)."""
    row = session.execute(
        select(Lead.state, Lead.lead, Lead.purged_at).where(Lead.id == primary_id)
    ).one_or_none()
    if row is None or row.state not in (*_PENDING, LeadState.delivered):
        return False
    told = _as_told(row.lead, row.purged_at)
    return told is not None and bool(enrichment.additions(twin, told))


class Twin:
    """One enrichment run of a leased twin: wait for the delivered lead, then merge."""

    def __init__(self, hold: Hold, primary_id: int) -> None:
        self.hold = hold
        self.primary_id = primary_id

    def run(self) -> Outcome:
        hold = self.hold
        with hold.tx() as session:
            primary = session.get(Lead, self.primary_id)
            assert primary is not None
            state, opportunity_id, account = primary.state, primary.opportunity_id, primary.account
            delivered = _as_told(primary.lead, primary.purged_at)
        if state in _PENDING:
            return policy.wait(hold, WAIT_FOR_PRIMARY_SECONDS, f"waiting for lead {self.primary_id}")
        adds = enrichment.additions(hold.s.lead, delivered) if delivered else enrichment.Additions()
        if state != LeadState.delivered or opportunity_id is None or account is None or not adds:
            return self._settle(None, None, None)  # nothing of ours to enrich: a plain duplicate
        try:
            client = self.hold.rt.nexudus(account)
        except ConfigurationError as err:
            return policy.failed(hold, Result(Answer.pause, message=str(err)), call="configuration")
        return notes.one_writer(
            hold, account, opportunity_id, lambda: self._merge(client, opportunity_id, adds)
        )

    def _merge(self, client: NexudusClient, opportunity_id: int, adds: enrichment.Additions) -> Outcome:
        hold = self.hold
        got = hold.call("opportunity.get", lambda guard: client.get_opportunity(opportunity_id, guard=guard))
        if not got.ok:
            return policy.failed(hold, got, call="opportunity.get")
        record: dict[str, Any] = dict(got.value or {})
        written: dict[str, Any] = {"at": utcnow().isoformat()}
        done = self._put(client, "opportunity", record, adds.opportunity, written)
        if isinstance(done, Outcome):
            return done
        coworker_id = record.get("CoworkerId")
        if adds.coworker and isinstance(coworker_id, int):
            customer = hold.call("coworker.get", lambda guard: client.get_coworker(coworker_id, guard=guard))
            if not customer.ok:
                return policy.failed(hold, customer, call="coworker.get")
            done = self._put(client, "coworker", dict(customer.value or {}), adds.coworker, written)
            if isinstance(done, Outcome):
                return done
        return self._settle(coworker_id, opportunity_id, record.get("Name"))

    def _put(
        self,
        client: NexudusClient,
        kind: str,
        record: dict[str, Any],
        wanted: dict[str, str],
        written: dict[str, Any],
    ) -> Outcome | None:
        """Merge ``wanted`` into ``record`` and PUT it whole when anything changes; None when done."""
        hold, record_id = self.hold, record.get("Id")
        if not wanted or not isinstance(record_id, int):
            return None
        with hold.tx() as session:
            last = enrichment.last_written(self._entries(session), kind, record_id)
        merged = enrichment.merge(record, wanted, last)
        if merged.changes:
            body = {**record, **merged.changes}
            update_record = client.update_opportunity if kind == "opportunity" else client.update_coworker
            put = hold.call(f"{kind}.update", lambda guard: update_record(body, guard=guard))
            if not put.ok:
                return policy.failed(hold, put, call=f"{kind}.update")
        written[kind] = {"Id": record_id, **merged.ours}
        entry = dict(written)
        twin_id = hold.s.id

        def remember(work: Unit) -> None:
            work.orm().execute(update(Lead).where(Lead.id == twin_id).values(written=entry))

        hold.later(remember)  # with the next transaction: the next PUT's lease renewal, or the settling
        return None

    def _entries(self, session: Session) -> list[dict[str, Any]]:
        """What the twins of this enquiry wrote so far (this one's earlier runs included)."""
        rows = session.execute(
            select(Lead.written).where(Lead.duplicate_of == self.primary_id, Lead.written.is_not(None))
        )
        return [entry for entry in rows.scalars() if isinstance(entry, dict)]

    def _settle(self, coworker_id: Any, opportunity_id: int | None, name: Any) -> Outcome:
        """Settled as a duplicate: of the opportunity it enriched, or (nothing to do) of none."""
        return policy.settle(
            self.hold,
            LeadState.duplicate,
            coworker_id=coworker_id if isinstance(coworker_id, int) else None,
            opportunity_id=opportunity_id,
            name=name if isinstance(name, str) else None,
        )
