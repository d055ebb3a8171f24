"""GDPR erasure: remove one person's data from the ledger, on request, whatever its age.

The person is found by e-mail address: every lead whose identity is that address,
and every lead not (yet) read whose raw input names it (unreadable mail, mail
waiting for a worker) — as a whole address, also inside a mail's base64 or
quoted-printable parts and forwarded messages. Each is purged as the retention policy would
(:mod:`leadrelay.personal_data`); a lead still on its way is stopped first
(``ignored``), so nothing is delivered after the request. A lead a worker is
delivering right now is never taken from under its lease (its create could land
unrecorded): :func:`erase_when_idle` waits for the worker to finish or give the
lead back, or for its lease to run out. The Nexudus customer cache forgets the
address. The audit log records the request by a hash of the address — never the
address itself.

Nexudus keeps its own copy (the customer and the opportunity): the report names
their ids so that someone erases them in Nexudus too — and, for a lead stopped
after a create whose answer never came, the Name tag it may exist under.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from sqlalchemy import and_, delete, or_, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from leadrelay.adapters.base import Limits
from leadrelay.adapters.mail.attachments import attachments_of
from leadrelay.adapters.mail.message import Mail, read_mail
from leadrelay.adapters.tables import TableError, read_table, table_format
from leadrelay.canonical import normalise_email
from leadrelay.db import transaction
from leadrelay.errors import Refused
from leadrelay.ledger import audit, clock
from leadrelay.models import TERMINAL_STATES, CoworkerCache, Lead, LeadState, PurgeReason
from leadrelay.personal_data import purge_leads
from leadrelay.worker.imap.intake import CONTENT_TYPE

SCAN_BATCH = 200
STOPPED_NOTE = "erased at the person's request before delivery"


WAIT_POLL_SECONDS = 0.25


class ErasureRefused(Refused):
    """The request cannot be carried out; the message says why in one line."""


class InFlight(ErasureRefused):
    """A worker is delivering one of the person's leads right now: try again when it is done."""

    def __init__(self, lead_ids: list[int]) -> None:
        super().__init__(
            f"lead(s) {', '.join(map(str, lead_ids))} are being delivered to Nexudus right now; "
            "nothing was erased — try again in a minute"
        )
        self.lead_ids = lead_ids


@dataclass(frozen=True, slots=True)
class InNexudus:
    """A record Nexudus holds (or may hold) for the person: to be erased there by someone."""

    account: str | None
    coworker_id: int | None
    opportunity_id: int | None
    # a create was sent and its answer never came: the opportunity may exist under this Name
    may_exist_as: str | None = None


@dataclass
class ErasureReport:
    reference: str  # sha256 of the address, as the audit log names it
    lead_ids: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)  # were still on their way
    dead_letters_closed: int = 0
    cache_rows: int = 0
    in_nexudus: list[InNexudus] = field(default_factory=list)


def reference(email: str) -> str:
    return "sha256:" + hashlib.sha256(email.encode()).hexdigest()[:16]


def _address(email: str) -> str:
    try:
        address = normalise_email(email)
    except ValueError:
        address = None
    if not address:
        raise ErasureRefused(f"{email!r} is not an e-mail address")
    return address


def _pattern(address: str) -> re.Pattern[str]:
    """The address as a whole word: ``ann@example.com`` is not found in ``joann@example.com``."""
    return re.compile(r"(?<![\w.+-])" + re.escape(address) + r"(?!\.?[\w-])", re.IGNORECASE)


def _mail_texts(mail: Mail) -> Iterator[str]:
    yield from (mail.subject, mail.sender, *mail.recipients, mail.plain, mail.html, *mail.links)
    for inner in mail.attached:
        yield from _mail_texts(inner)


def _names(raw: bytes, content_type: str | None, pattern: re.Pattern[str]) -> bool:
    """Does the raw input name the address — in mail, also inside base64 or quoted-printable parts?"""
    if pattern.search(raw.decode("utf-8", errors="replace")):
        return True
    if content_type != CONTENT_TYPE:
        return False
    # every part, whole: decoded text is never longer than the raw bytes it came from
    whole = Limits(message_bytes=len(raw) + 1, part_text_bytes=len(raw), mail_text_bytes=len(raw))
    return any(pattern.search(text) for text in _mail_texts(read_mail(raw, whole))) or any(
        pattern.search(text) for text in _table_texts(raw)
    )


def _table_texts(raw: bytes) -> Iterator[str]:
    """The cells of the CSV and XLSX files attached to a mail, row by row (a broker's table of leads)."""
    for attachment in attachments_of(raw):
        if table_format(attachment.name, attachment.content_type) is None:
            continue
        try:
            table = read_table(attachment.name, attachment.content_type, attachment.data)
        except TableError:
            yield attachment.data.decode("utf-8", errors="replace")  # unread: searched as it is
            continue
        yield "\t".join(table.headers)
        yield from ("\t".join(row.cells) for row in table.rows)


def _mentioning(session: Session, address: str) -> list[int]:
    """Unread leads (no identity yet) whose raw input names the address, in any letter case."""
    pattern = _pattern(address)
    found: list[int] = []
    after = 0
    while True:
        rows = session.execute(
            select(Lead.id, Lead.raw_body, Lead.content_type)
            .where(Lead.id > after, Lead.identity.is_(None), Lead.raw_body.is_not(None))
            .order_by(Lead.id)
            .limit(SCAN_BATCH)
        ).all()
        if not rows:
            return found
        found += [
            lead_id
            for lead_id, raw, content_type in rows
            if raw is not None and _names(raw, content_type, pattern)
        ]
        after = rows[-1][0]


def find_leads(session: Session, email: str) -> list[int]:
    """Every lead of this person, oldest first."""
    address = _address(email)
    known = session.execute(select(Lead.id).where(Lead.identity == f"email:{address}")).scalars()
    found = {*known, *_mentioning(session, address)}
    return sorted(found | _follow_ups_of(session, found))


def _follow_ups_of(session: Session, lead_ids: set[int]) -> set[int]:
    """The follow-ups of these leads' enquiries (same channel and reference): theirs too."""
    enquiries = session.execute(
        select(Lead.channel, Lead.external_id).where(
            Lead.id.in_(lead_ids), Lead.external_id.is_not(None), Lead.follow_up.is_(None)
        )
    ).all()
    if not enquiries:
        return set()
    pairs = [tuple(pair) for pair in enquiries]
    stmt = select(Lead.id).where(
        Lead.follow_up.is_not(None), tuple_(Lead.channel, Lead.external_id).in_(pairs)
    )
    return set(session.execute(stmt).scalars())


def _in_flight(session: Session, lead_ids: list[int]) -> list[int]:
    """Leads a worker holds a live lease on (judged on the ledger's clock)."""
    stmt = select(Lead.id).where(
        Lead.id.in_(lead_ids), Lead.state == LeadState.delivering, Lead.lease_until >= clock(session)
    )
    return sorted(session.execute(stmt).scalars())


def _stop(session: Session, lead_ids: list[int]) -> list[int]:
    """Stop leads on their way (not while a worker's lease on them lasts); the ids stopped."""
    if not lead_ids:
        return []
    waiting = Lead.state.in_([LeadState.received, LeadState.normalised])
    abandoned = and_(Lead.state == LeadState.delivering, Lead.lease_until < clock(session))
    stopped = session.execute(
        update(Lead)
        .where(Lead.id.in_(lead_ids), or_(waiting, abandoned))
        .values(state=LeadState.ignored, note=STOPPED_NOTE, lease_owner=None, lease_until=None)
        .returning(Lead.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(stopped.scalars())


def erase(session: Session, email: str, *, actor: str, dry_run: bool = False) -> ErasureReport:
    """Erase the person with this address from the ledger; the caller commits.

    Raises :class:`InFlight` (changing nothing) while a worker is delivering one
    of the person's leads: :func:`erase_when_idle` waits that out.
    """
    address = _address(email)
    report = ErasureReport(reference=reference(address), lead_ids=find_leads(session, address))
    busy = _in_flight(session, report.lead_ids)
    if busy and not dry_run:
        raise InFlight(busy)
    rows = session.execute(select(Lead).where(Lead.id.in_(report.lead_ids))).scalars().all()
    report.in_nexudus = [
        InNexudus(
            row.account,
            row.coworker_id,
            row.opportunity_id,
            may_exist_as=row.opportunity_name if row.opportunity_id is None else None,
        )
        for row in rows
        if row.coworker_id is not None
        or row.opportunity_id is not None
        or (row.create_sent_at is not None and row.state not in (LeadState.duplicate, LeadState.attached))
    ]
    unsettled = [row.id for row in rows if row.state not in TERMINAL_STATES]
    if dry_run:
        report.stopped = unsettled
        return report
    report.stopped = _stop(session, unsettled)
    if set(report.stopped) != set(unsettled):  # a worker claimed one since we looked: start again
        raise InFlight(sorted(set(unsettled) - set(report.stopped)))
    if report.lead_ids:
        purged = purge_leads(session, report.lead_ids, why=PurgeReason.erasure, actor=actor)
        report.dead_letters_closed = purged.dead_letters_closed
    report.cache_rows = int(
        session.execute(delete(CoworkerCache).where(CoworkerCache.email == address)).rowcount  # type: ignore[attr-defined]
    )
    audit(
        session,
        actor=actor,
        action="privacy.erase",
        target=f"person:{report.reference}",
        result="erased",
        detail={
            "lead_ids": report.lead_ids,
            "stopped": report.stopped,
            "dead_letters_closed": report.dead_letters_closed,
            "coworker_cache_rows": report.cache_rows,
            "nexudus": [asdict(record) for record in report.in_nexudus],
        },
    )
    return report


def erase_when_idle(
    sessions: sessionmaker[Session], email: str, *, actor: str, wait_seconds: float, dry_run: bool = False
) -> ErasureReport:
    """:func:`erase` in its own transaction, once no worker is delivering the person's leads.

    A worker in flight finishes (or hands the lead back) within its lease; after
    ``wait_seconds`` the last :class:`InFlight` is raised.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with transaction(sessions) as session:
                return erase(session, email, actor=actor, dry_run=dry_run)
        except InFlight:
            if time.monotonic() >= deadline:
                raise
        time.sleep(WAIT_POLL_SECONDS)
