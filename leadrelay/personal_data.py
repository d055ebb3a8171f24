"""What in the ledger is personal data, and how it is removed while the ledger keeps working.

Purging a lead (the retention policy, or an erasure request) removes its raw
input, the person in its canonical lead (contact, message, the broker's staff
contact), the identity and company keys used to match people, and any such
detail that leaked into error texts, attempt responses, dead letters and the
audit log — an admin's reason for discarding a dead letter goes whole, since
free text may name the person in words no pattern knows. It keeps the ids, states,
timestamps, channel, portal reference, listing and requirements, the Nexudus
ids, and the dedupe keys and fingerprint — hashes and references, so a purged
lead still recognises its own repeats.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from leadrelay.db import utcnow
from leadrelay.logs import mask_personal
from leadrelay.models import (
    AuditEntry,
    DeadLetter,
    DeadLetterStatus,
    DeliveryAttempt,
    Lead,
    PurgeReason,
)

ERASED = "[erased]"
KEPT_LEAD_PARTS = (
    "channel",
    "lead_source",
    "external_id",
    "kind",
    "received_at",
    "requirements",
    "listing",
    "viewing_at",
    "utm",
)
KEPT_DETAIL_KEYS = ("call", "status", "channel", "source", "inbox", "listing", "message")
PERSON_FIELDS = ("full_name", "first_name", "last_name", "email", "phone", "company")


def strip_lead(lead: dict[str, Any] | None) -> dict[str, Any] | None:
    """The canonical lead without the person: what it asked for, not who asked."""
    if lead is None:
        return None
    kept = {key: lead[key] for key in KEPT_LEAD_PARTS if key in lead}
    broker = lead.get("broker")
    if isinstance(broker, dict) and broker.get("name"):
        kept["broker"] = {"name": broker["name"]}
    return kept


def people_in(lead: dict[str, Any] | None) -> set[str]:
    """The person's own words for themself: names, address, phone, company (to erase from texts)."""
    contact = (lead or {}).get("contact") or {}
    return {str(contact[f]) for f in PERSON_FIELDS if contact.get(f) and len(str(contact[f])) > 2}


def scrub(text: str | None, needles: Iterable[str] = ()) -> str | None:
    """Free text with the given personal values and anything like an address or phone removed."""
    if not text:
        return text
    for needle in sorted(needles, key=len, reverse=True):
        text = re.sub(re.escape(needle), ERASED, text, flags=re.IGNORECASE)
    return mask_personal(text)


def strip_detail(detail: dict[str, Any] | None, needles: Iterable[str] = ()) -> dict[str, Any]:
    """A dead letter's detail without Nexudus's echo of the record (AttemptedValue, response)."""
    detail = detail or {}
    kept: dict[str, Any] = {k: detail[k] for k in KEPT_DETAIL_KEYS if k in detail}
    if isinstance(kept.get("message"), str):
        kept["message"] = scrub(kept["message"], needles)
    errors = detail.get("errors")
    if isinstance(errors, list):
        kept["errors"] = [
            {"PropertyName": e.get("PropertyName"), "Message": scrub(str(e.get("Message") or ""), needles)}
            for e in errors
            if isinstance(e, dict)
        ]
    return kept


def _unnamed_attachments(meta: dict[str, Any]) -> dict[str, Any]:
    """``raw_meta`` without the attached files' names (``Jane Doe CV.pdf``): their types and sizes stay."""
    if not isinstance(meta.get("attachments"), list):
        return meta
    files = [{k: v for k, v in f.items() if k != "name"} for f in meta["attachments"] if isinstance(f, dict)]
    return {**meta, "attachments": files}


@dataclass(frozen=True, slots=True)
class Purged:
    leads: int
    dead_letters_closed: int


def purge_leads(
    session: Session, lead_ids: list[int], *, why: PurgeReason, actor: str, now: datetime | None = None
) -> Purged:
    """Remove the personal data of these leads (and what refers to it); the caller commits."""
    at = now or utcnow()
    rows = session.execute(select(Lead).where(Lead.id.in_(lead_ids)).with_for_update()).scalars().all()
    needles: dict[int, set[str]] = {row.id: people_in(row.lead) for row in rows}
    for row in rows:
        row.raw_body = None
        if row.raw_meta:
            row.raw_meta = _unnamed_attachments(row.raw_meta)
        row.lead = strip_lead(row.lead)
        if row.follow_up:  # what it changed may name the person (contact) or quote them (message)
            changes = {k: v for k, v in (row.follow_up.get("changes") or {}).items() if k != "contact"}
            row.follow_up = {**row.follow_up, "changes": changes, "message": None}
        row.identity = None
        row.company_key = None
        row.written = None  # a twin's merged fields (a phone, a company): forgotten, never rewritten
        row.note = scrub(row.note, needles[row.id])
        row.last_error = scrub(row.last_error, needles[row.id])
        row.purged_at, row.purged_why = at, why.value
    for attempt in session.execute(
        select(DeliveryAttempt).where(DeliveryAttempt.lead_id.in_(lead_ids))
    ).scalars():
        attempt.response = None
        attempt.error = scrub(attempt.error, needles.get(attempt.lead_id, ()))
    closed = 0
    letters = session.execute(select(DeadLetter).where(DeadLetter.lead_id.in_(lead_ids))).scalars().all()
    for letter in letters:
        letter.message = scrub(letter.message, needles.get(letter.lead_id, ())) or ""
        letter.detail = strip_detail(letter.detail, needles.get(letter.lead_id, ()))
        if letter.status == DeadLetterStatus.discarded:
            letter.resolution = ERASED  # an admin's own words, which may name the person
        if letter.status == DeadLetterStatus.open:
            letter.status = DeadLetterStatus.discarded
            letter.resolved_at, letter.resolved_by = at, actor
            letter.resolution = f"personal data purged ({why.value}): it can no longer be replayed"
            closed += 1
    _strip_audit_detail(session, [letter.id for letter in letters])
    session.flush()
    return Purged(leads=len(rows), dead_letters_closed=closed)


def _strip_audit_detail(session: Session, letter_ids: list[int]) -> None:
    """The audit log's copy of these dead letters' people: an edit's lead before and after, why one went."""
    if not letter_ids:
        return
    targets = [f"dead_letter:{letter_id}" for letter_id in letter_ids]
    entries = session.execute(
        select(AuditEntry).where(
            AuditEntry.action.in_(("dead_letter.edit", "dead_letter.discard")), AuditEntry.target.in_(targets)
        )
    ).scalars()
    for entry in entries:
        detail = dict(entry.detail or {})
        for side in ("before", "after"):
            if side in detail:
                detail[side] = strip_lead(detail[side])
        if "why" in detail:
            detail["why"] = ERASED  # free text: nothing says it does not name the person
        entry.detail = detail
