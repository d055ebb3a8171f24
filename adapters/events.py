"""Follow-ups: what a portal says later about an enquiry it already sent — pure, like every adapter.

A webhook whose event type, or a mail whose subject, the portal's spec lists as a
follow-up (``updated``, ``viewing_booked``, ``viewing_cancelled``, ``withdrawn``)
is read here into a :class:`FollowUp`: the enquiry's reference, and what the item
says changed, read with the portal's own paths and labels (so a budget reads as
it does in a lead). Every other item is left to the lead reader (``None``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from leadrelay.adapters.base import NotALead, ParseContext, ParseError, RawItem, finish
from leadrelay.adapters.fields import Found, build_draft, language_region
from leadrelay.adapters.from_email import read_email
from leadrelay.adapters.from_row import ROW_CONTENT_TYPE
from leadrelay.adapters.from_webhook import json_object, lookup, read_webhook
from leadrelay.adapters.mail.forwards import unwrap
from leadrelay.adapters.mail.message import read_mail
from leadrelay.adapters.mail.replies import without_reply_prefix
from leadrelay.adapters.spec import EventTable, PortalSpec
from leadrelay.adapters.unread import ReadSoFar
from leadrelay.routing.follow_ups import FollowUpKind

# what a follow-up may say changed: canonical paths kept from its reading
CHANGED = ("requirements", "viewing_at", "contact")


@dataclass(frozen=True, slots=True)
class FollowUp:
    """One follow-up of an enquiry: which one (the portal's reference), what happened, what changed."""

    kind: FollowUpKind
    reference: str
    occurred_at: datetime | None = None
    changes: dict[str, Any] = field(default_factory=dict)  # canonical JSON: requirements, viewing_at, contact
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "reference": self.reference,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "changes": self.changes,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FollowUp:
        occurred = data.get("occurred_at")
        return cls(
            kind=FollowUpKind(data["kind"]),
            reference=str(data["reference"]),
            occurred_at=datetime.fromisoformat(occurred) if occurred else None,
            changes=dict(data.get("changes") or {}),
            message=data.get("message"),
        )

    def content(self) -> str:
        """What it says, without when it was sent: two copies of one follow-up read the same."""
        return json.dumps([self.kind.value, self.reference, self.changes], sort_keys=True, default=str)


def _present(value: Any) -> Any:
    """``value`` without its empty parts (None when nothing is left)."""
    if isinstance(value, dict):
        kept = {k: v for k, v in ((k, _present(v)) for k, v in value.items()) if v is not None}
        return kept or None
    return None if value in ("", []) else value


def _drop(data: Any, where: tuple[str, ...]) -> None:
    node = data
    for key in where[:-1]:
        node = node[key]
    if isinstance(node, dict):
        node.pop(where[-1], None)


def _webhook_kind(body: bytes, events: EventTable) -> FollowUpKind | None:
    if not events.follow_ups:
        return None
    try:
        data = json_object(body)
    except (NotALead, ParseError):
        return None  # not an object: the lead reader says why
    # any of the event paths: Kontor names the resource in one (``leads``) and the event in another
    values = (v for path in events.paths for _, v in lookup(data, path) if isinstance(v, str | int))
    return next((kind for v in values if (kind := events.follow_up_for(str(v))) is not None), None)


def _subject_kind(item: RawItem, spec: PortalSpec, ctx: ParseContext) -> FollowUpKind | None:
    if not spec.follow_up_subjects or len(item.body) > ctx.limits.message_bytes:
        return None
    mail = read_mail(item.body, ctx.limits)
    layers = unwrap(mail)
    subject = without_reply_prefix(layers[-1].subject or mail.subject)
    return next((kind for pattern, kind in spec.follow_up_subjects if pattern.search(subject)), None)


def _found(item: RawItem, spec: PortalSpec, ctx: ParseContext) -> Found:
    """The item read as a lead would be, with nothing in the way of reading it."""
    if item.kind == "webhook":
        data = json_object(item.body)
        for path in spec.events.paths:  # the event type is no requirement (``Type: InquiryUpdated``)
            for where, _ in list(lookup(data, path)):
                _drop(data, where)
        return read_webhook(json.dumps(data).encode(), replace(spec, events=EventTable()))
    plain = replace(spec, follow_up_subjects=(), ignored_subjects=())
    return read_email(item.body, plain, ctx.limits, require_contact=False)


def read_follow_up(item: RawItem, spec: PortalSpec, ctx: ParseContext) -> FollowUp | None:
    """The follow-up this item is, or None when it is none (a lead, a newsletter…: read elsewhere)."""
    if item.content_type == ROW_CONTENT_TYPE:
        return None
    kind = _webhook_kind(item.body, spec.events) if item.kind == "webhook" else _subject_kind(item, spec, ctx)
    if kind is None:
        return None
    found = _found(item, spec, ctx)
    draft = build_draft(found, spec.reading)
    draft.setdefault("contact", {})  # a follow-up need not name the client again
    read = finish(
        draft, ctx, drop_invalid=True, model=ReadSoFar, language_region=language_region(found)
    ).to_json_dict()
    reference = read.get("external_id")
    if not reference:
        raise ParseError(f"a follow-up ({kind.heading.lower()}) that names no enquiry reference")
    changes = {key: _present(read.get(key)) for key in CHANGED}
    occurred = read.get("received_at")
    return FollowUp(
        kind=kind,
        reference=str(reference),
        occurred_at=datetime.fromisoformat(occurred) if occurred else None,
        changes={k: v for k, v in changes.items() if v is not None},
        message=read.get("message"),
    )
