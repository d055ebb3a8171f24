"""A notification's content: the client, the requirements, the broker, the deadline, the link.

The body carries the lead's personal data on purpose (it goes to staff); nothing
here is ever logged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadrelay.canonical import CanonicalLead
from leadrelay.nexudus.payloads import notes

CREATED = "created"
ATTACHED = "attached"


@dataclass(frozen=True, slots=True)
class Facts:
    """What a notification says, gathered from the ledger when it is sent."""

    event: str  # created | attached
    key: str  # the outbox row's key: the idempotency key's source
    lead_id: int
    label: str  # the portal, as Nexudus names the LeadSource (HubbleHq, …)
    location: str
    opportunity_id: int
    link: str
    received_at: datetime
    reject_by: datetime
    staff_name: str | None
    lead: CanonicalLead | None  # None once the lead's personal data was purged

    @property
    def idempotency_key(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()[:40]

    def subject(self) -> str:
        who = self._client() or f"lead {self.lead_id}"
        if self.event == ATTACHED:
            return f"Later introduction via {self.label}: {who} ({self.location})"
        return f"New opportunity via {self.label}: {who} ({self.location})"

    def text(self) -> str:
        head = (
            f"{self.staff_name}, a" if self.staff_name else "A"
        ) + f" {'later introduction' if self.event == ATTACHED else 'new opportunity'} for {self.location}."
        lines = [head, f"Open it in Nexudus: {self.link}", ""]
        if self.lead is not None:
            lines.append(
                notes(self.lead, label=self.label, lead_id=self.lead_id, received_at=self.received_at)
            )
        else:
            lines.append(f"Lead {self.lead_id} via {self.label}: its personal data has been removed.")
        lines.append("")
        when = self.reject_by.strftime("%Y-%m-%d %H:%M UTC")
        if self.event == ATTACHED:
            lines.append(f"Another broker introduced this client first: reject this introduction by {when}.")
        else:
            lines.append(f"If you already know this client from another broker, reject this one by {when}.")
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON: ``text`` for Slack and Teams relays, the facts for anything else."""
        lead = self.lead
        broker = lead.broker if lead else None
        return {
            "service": "leadrelay",
            "event": f"opportunity.{self.event}",
            "idempotency_key": self.idempotency_key,
            "text": f"{self.subject()}\n{self.link}",
            "opportunity": {"id": self.opportunity_id, "url": self.link},
            "location": self.location,
            "channel": self.label,
            "assigned_to": self.staff_name,
            "reject_by": self.reject_by.isoformat(timespec="minutes"),
            "client": lead.contact.model_dump(mode="json", exclude_none=True) if lead else None,
            "requirements": lead.requirements.model_dump(mode="json", exclude_none=True) if lead else None,
            "broker": broker.model_dump(mode="json", exclude_none=True) if broker else None,
            "lead_id": self.lead_id,
        }

    def _client(self) -> str | None:
        if self.lead is None:
            return None
        contact = self.lead.contact
        return ", ".join(p for p in (contact.full_name, contact.company) if p) or contact.email
