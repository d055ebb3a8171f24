"""What a follow-up does to its opportunity's record — pure: the record in, the record to PUT out.

Always a dated note naming the change, carrying the follow-up's marker (so a PUT
retried after a lost answer is not written twice). Beyond the note, only what the
account allows (``accounts.<name>.follow_ups``, all off by default):

- ``apply_fields``: an update's budget or term rewrites ``Value``; an update moves
  ``DueDate`` to the follow-up hours from now, a booked viewing to the viewing;
- ``close_on_withdrawal``: a withdrawal sets ``Status`` Lost with ``loss_reason``;
  ``withdrawn_column_id`` moves it to that column;
- a Won or Lost opportunity only ever gets the note — unless ``reopen_closed``, when
  an update or a booked viewing sets it InProgress again (in the location's column).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from leadrelay.adapters.events import FollowUp
from leadrelay.canonical import CanonicalLead
from leadrelay.nexudus.enums import OpportunityStatus
from leadrelay.nexudus.payloads import (
    Route,
    _budget_text,
    _desks_text,
    expected_value,
    note_marker,
    with_note,
)
from leadrelay.routing.follow_ups import FollowUpKind, FollowUpOptions

_CLOSED = (int(OpportunityStatus.Won), int(OpportunityStatus.Lost))
_NEXUDUS_TIME = "%Y-%m-%dT%H:%M:%SZ"


def applied(lead: CanonicalLead, follow_up: FollowUp) -> CanonicalLead:
    """The enquiry as the follow-up leaves it (the lead unchanged when the change does not read)."""
    data = lead.to_json_dict()
    for part in ("requirements", "contact"):
        change = follow_up.changes.get(part)
        if isinstance(change, dict):
            data[part] = {**(data.get(part) or {}), **change}
    if follow_up.changes.get("viewing_at"):
        data["viewing_at"] = follow_up.changes["viewing_at"]
    if follow_up.kind is FollowUpKind.viewing_cancelled:
        data["viewing_at"] = None
    try:
        return CanonicalLead.model_validate(data)
    except ValidationError:
        return lead


def _facts(lead: CanonicalLead) -> dict[str, str | None]:
    req, contact = lead.requirements, lead.contact
    return {
        "Desks": _desks_text(lead),
        "Workspace": req.workspace_type.replace("_", " ") if req.workspace_type else None,
        "Budget": _budget_text(lead),
        "Start": req.start_date.isoformat() if req.start_date else None,
        "Term": f"{req.term_months} months" if req.term_months else None,
        "Area": req.area,
        "Viewing": lead.viewing_at.isoformat(timespec="minutes") if lead.viewing_at else None,
        "E-mail": contact.email,
        "Phone": contact.phone,
    }


def changes(before: CanonicalLead, after: CanonicalLead) -> list[str]:
    """``Desks: 12 → 15``, one per fact that differs."""
    old, new = _facts(before), _facts(after)
    return [f"{name}: {old[name] or '—'} → {new[name] or '—'}" for name in new if old[name] != new[name]]


@dataclass(frozen=True, slots=True)
class Merge:
    """One follow-up's merge: what it knows, to build the record to PUT."""

    follow_up: FollowUp
    before: CanonicalLead  # the enquiry as the earlier follow-ups left it
    lead_id: int  # the follow-up's ledger id: its note's marker
    label: str  # the channel as Nexudus names it
    received_at: datetime
    options: FollowUpOptions
    route: Route

    def record(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The record to PUT; None when the note is there already (an earlier run's PUT landed)."""
        if note_marker(self.lead_id) in (record.get("Notes") or ""):
            return None
        after = applied(self.before, self.follow_up)
        fields, said = self._fields(record, after)
        kind = self.follow_up.kind
        when = self.received_at.strftime("%Y-%m-%d %H:%M UTC")
        reference = f"(ref {self.follow_up.reference})"
        lines = [f"{kind.heading} via {self.label} {reference} on {when} {note_marker(self.lead_id)}"]
        lines += changes(self.before, after)
        if self.follow_up.message:
            lines.append(f"Message: {self.follow_up.message}")
        lines += said
        return {**with_note(record, "\n".join(lines)), **fields}

    def _fields(self, record: dict[str, Any], after: CanonicalLead) -> tuple[dict[str, Any], list[str]]:
        """The fields to change, and the note's lines saying so."""
        options, kind = self.options, self.follow_up.kind
        fields: dict[str, Any] = {}
        said: list[str] = []
        closed = record.get("Status") in _CLOSED
        if closed:
            status = OpportunityStatus(record["Status"]).name
            if not options.reopen_closed or kind in (FollowUpKind.withdrawn, FollowUpKind.viewing_cancelled):
                return {}, [f"The opportunity is {status}: left as it is."]
            fields["Status"] = int(OpportunityStatus.InProgress)
            fields["CrmBoardColumnId"] = self.route.location_config.board_column_id
            said.append(f"Reopened (was {status}).")
        if kind is FollowUpKind.withdrawn:
            if options.close_on_withdrawal:
                fields["Status"] = int(OpportunityStatus.Lost)
                fields["LossReason"] = int(options.loss_reason)
                said.append(f"Closed as Lost ({options.loss_reason.name}).")
            if options.withdrawn_column_id is not None:
                fields["CrmBoardColumnId"] = options.withdrawn_column_id
            return fields, said
        if not options.apply_fields:
            return fields, said
        value = expected_value(after, default_term_months=self.route.term_months)
        if value is not None and value != record.get("Value"):
            fields["Value"] = value
            said.append(f"Value: {record.get('Value') or '—'} → {value:g}")
        due: datetime | None = None
        if kind is FollowUpKind.updated:
            due = self.received_at + timedelta(hours=self.route.follow_up_hours)
        elif kind is FollowUpKind.viewing_booked and after.viewing_at is not None:
            due = after.viewing_at
        if due is not None:
            fields["DueDate"] = (due.astimezone(UTC) if due.tzinfo else due).strftime(_NEXUDUS_TIME)
            said.append(f"Due: {fields['DueDate']}")
        return fields, said
