"""Finding leads and dead letters: one implementation for the admin page, the API and the CLI.

Every list is a *page*: newest first, at most :data:`MAX_PAGE` rows, and the next
page starts after the last id shown (keyset paging: ``id < cursor``, never OFFSET).
Counts are ``SELECT count(*)`` over the same conditions, without loading a row.

The person filters read the canonical lead's contact (``leads.lead``, JSON). On
Postgres each has an index over that very expression (migration ``0010_search``):

* e-mail: ``lead -> 'contact' ->> 'email'`` (``text_pattern_ops``: equal, or a prefix);
* phone: ``lead -> 'contact' ->> 'phone'`` (E.164, equal);
* name: ``to_tsvector('simple', …full_name)`` (GIN): every word typed starts a word of the name.

A lead whose input could not be read has no canonical lead and is found by its
channel, reference, state or time, not by a person's details (its raw input is not
searched). SQLite (the demo) evaluates the same filters without those indexes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any, Generic, TypeVar, TypeVarTuple

from sqlalchemy import ColumnElement, Select, String, bindparam, func, literal_column, select
from sqlalchemy.orm import Session

from leadrelay.canonical import normalise_phone
from leadrelay.models import DeadLetter, Lead

MAX_PAGE = 500
DEFAULT_PAGE = 50
EXPORT_PAGE = MAX_PAGE  # rows per query while an export streams
_Ts = TypeVarTuple("_Ts")
R = TypeVar("R")

# The indexed expressions, written exactly as migration 0010_search indexes them (Postgres),
# and their SQLite equivalents. Field names are constants here, never input.
_CONTACT = {
    "postgresql": "(leads.lead -> 'contact' ->> '{}')",
    "sqlite": "json_extract(leads.lead, '$.contact.{}')",
}
_NAME_WORDS = "to_tsvector('simple'::regconfig, coalesce((leads.lead -> 'contact' ->> 'full_name'), ''))"
_WORD = re.compile(r"\w+", re.UNICODE)
_LIKE_SPECIAL = re.compile(r"([\\%_])")
MAX_TEXT = 320  # longer search text is refused by the callers; it could not match anything


@dataclass(frozen=True, slots=True)
class Criteria:
    """What to look for; every field is optional and they all must hold (AND)."""

    email: str | None = None  # a whole address (exact), or its start (no @)
    phone: str | None = None  # E.164, or a national number in ``region``
    name: str | None = None  # words that start words of the contact's full name
    reference: str | None = None  # the portal's reference (external_id), exact
    opportunity_id: int | None = None
    coworker_id: int | None = None
    lead_id: int | None = None
    channel: str | None = None
    state: str | None = None  # leads: the lead's state; dead letters: also the lead's state
    reason: str | None = None  # dead letters only
    status: str | None = None  # dead letters only: open, replayed, discarded, superseded (None: any)
    since: datetime | None = None  # received (leads) or died (dead letters) at or after
    until: datetime | None = None  # … and before
    region: str | None = None  # for a phone typed without its country code

    def person(self) -> bool:
        """True when a filter reads the lead's row (a dead-letter search then joins it)."""
        return any(
            (
                self.email,
                self.phone,
                self.name,
                self.reference,
                self.opportunity_id,
                self.coworker_id,
                self.channel,
                self.state,
            )
        )

    def described(self) -> dict[str, str]:
        """The filters given, as text (for a page's summary and the CLI's messages)."""
        return {
            f.name: v.isoformat() if isinstance(v, datetime) else str(v)
            for f in fields(self)
            if (v := getattr(self, f.name)) not in (None, "") and f.name != "region"
        }


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    rows: list[R]
    next_cursor: int | None  # the last id shown, when there is more: pass it as ``after``


@dataclass(frozen=True, slots=True)
class LeadRow:
    id: int
    received_at: datetime
    channel: str
    source: str
    state: str
    external_id: str | None
    name: str | None
    email: str | None
    phone: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    duplicate_of: int | None
    account: str | None
    coworker_id: int | None
    opportunity_id: int | None
    opportunity_name: str | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class LetterRow:
    id: int
    lead_id: int
    channel: str
    reason: str
    message: str
    status: str
    created_at: datetime
    external_id: str | None
    attempts: int
    name: str | None
    email: str | None
    resolved_by: str | None
    resolved_at: datetime | None


LEAD_COLUMNS = tuple(f.name for f in fields(LeadRow))
LETTER_COLUMNS = tuple(f.name for f in fields(LetterRow))


def _dialect(session: Session) -> str:
    return "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"


def contact(session: Session, field: str) -> ColumnElement[str]:
    """The canonical lead's ``contact.<field>`` as the index reads it."""
    return literal_column(_CONTACT[_dialect(session)].format(field), String)


def _inline(value: str) -> Any:
    """A value rendered into the statement, so that a cached, generic plan still uses the index."""
    return bindparam(None, value, type_=String(), literal_execute=True)


def normalised_phone(text: str, region: str | None = None) -> str:
    """What a typed phone number is stored as (E.164), else the digits typed."""
    return normalise_phone(text, region) or "".join(ch for ch in text if ch.isdigit() or ch == "+")


def _name_matches(session: Session, text: str) -> ColumnElement[bool]:
    words = [w.lower() for w in _WORD.findall(text)][:8]
    if _dialect(session) == "postgresql":
        query = " & ".join(f"{w}:*" for w in words)
        return literal_column(_NAME_WORDS).op("@@")(func.to_tsquery(literal_column("'simple'"), query))
    name = func.lower(contact(session, "full_name"))
    return _all([name.like("%" + _like_escaped(w) + "%", escape="\\") for w in words])


def _like_escaped(text: str) -> str:
    return _LIKE_SPECIAL.sub(r"\\\1", text)


def _all(clauses: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    result = clauses[0]
    for clause in clauses[1:]:
        result = result & clause
    return result


def _lead_conditions(session: Session, c: Criteria) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if c.email:
        email = c.email.strip().lower()
        column = contact(session, "email")
        if "@" in email:
            where.append(column == email)
        else:
            where.append(column.like(_inline(_like_escaped(email) + "%"), escape="\\"))
    if c.phone:
        where.append(contact(session, "phone") == normalised_phone(c.phone, c.region))
    if c.name and _WORD.search(c.name):
        where.append(_name_matches(session, c.name))
    if c.reference:
        where.append(Lead.external_id == c.reference.strip())
    if c.opportunity_id is not None:
        where.append(Lead.opportunity_id == c.opportunity_id)
    if c.coworker_id is not None:
        where.append(Lead.coworker_id == c.coworker_id)
    if c.channel:
        where.append(Lead.channel == c.channel)
    if c.state:
        where.append(Lead.state == c.state)
    return where


def _leads_where(session: Session, stmt: Select[*_Ts], c: Criteria) -> Select[*_Ts]:
    where = _lead_conditions(session, c)
    if c.lead_id is not None:
        where.append(Lead.id == c.lead_id)
    if c.since:
        where.append(Lead.received_at >= c.since)
    if c.until:
        where.append(Lead.received_at < c.until)
    return stmt.where(*where)


def _lead_columns(session: Session) -> tuple[Any, ...]:
    named = {"name": "full_name", "email": "email", "phone": "phone"}
    return tuple(
        contact(session, named[name]).label(name) if name in named else getattr(Lead, name)
        for name in LEAD_COLUMNS
    )


def find_leads(
    session: Session, c: Criteria, *, after: int | None = None, limit: int = DEFAULT_PAGE
) -> Page[LeadRow]:
    """Leads matching ``c``, newest first, after the cursor ``after`` (a lead id)."""
    size = max(1, min(limit, MAX_PAGE))
    stmt = _leads_where(session, select(*_lead_columns(session)), c)
    if after is not None:
        stmt = stmt.where(Lead.id < after)
    rows = [LeadRow(*row) for row in session.execute(stmt.order_by(Lead.id.desc()).limit(size + 1))]
    return Page(rows[:size], rows[size - 1].id if len(rows) > size else None)


def count_leads(session: Session, c: Criteria) -> int:
    return int(session.execute(_leads_where(session, select(func.count()).select_from(Lead), c)).scalar_one())


def _letters_where(session: Session, stmt: Select[*_Ts], c: Criteria) -> Select[*_Ts]:
    where = _lead_conditions(session, c)
    if c.lead_id is not None:
        where.append(DeadLetter.lead_id == c.lead_id)
    if c.reason:
        where.append(DeadLetter.reason == c.reason)
    if c.status:
        where.append(DeadLetter.status == c.status)
    if c.since:
        where.append(DeadLetter.created_at >= c.since)
    if c.until:
        where.append(DeadLetter.created_at < c.until)
    return stmt.where(*where)


def find_letters(
    session: Session, c: Criteria, *, after: int | None = None, limit: int = DEFAULT_PAGE
) -> Page[LetterRow]:
    """Dead letters matching ``c``, newest first, after the cursor ``after`` (a dead letter id)."""
    size = max(1, min(limit, MAX_PAGE))
    stmt = select(
        DeadLetter.id,
        DeadLetter.lead_id,
        Lead.channel,
        DeadLetter.reason,
        DeadLetter.message,
        DeadLetter.status,
        DeadLetter.created_at,
        Lead.external_id,
        Lead.attempts,
        contact(session, "full_name").label("name"),
        contact(session, "email").label("email"),
        DeadLetter.resolved_by,
        DeadLetter.resolved_at,
    ).join(Lead, Lead.id == DeadLetter.lead_id)
    stmt = _letters_where(session, stmt, c)
    if after is not None:
        stmt = stmt.where(DeadLetter.id < after)
    rows = [
        LetterRow(**row._mapping)
        for row in session.execute(stmt.order_by(DeadLetter.id.desc()).limit(size + 1))
    ]
    return Page(rows[:size], rows[size - 1].id if len(rows) > size else None)


def count_letters(session: Session, c: Criteria) -> int:
    stmt = select(func.count()).select_from(DeadLetter)
    if c.person():
        stmt = stmt.join(Lead, Lead.id == DeadLetter.lead_id)
    return int(session.execute(_letters_where(session, stmt, c)).scalar_one())


def open_letter_ids(session: Session, c: Criteria, *, limit: int) -> list[int]:
    """Ids of the *open* dead letters matching ``c``, oldest first, at most ``limit`` (for bulk actions)."""
    stmt = select(DeadLetter.id).join(Lead, Lead.id == DeadLetter.lead_id)
    stmt = _letters_where(session, stmt, replace(c, status="open"))
    return list(session.execute(stmt.order_by(DeadLetter.id).limit(limit)).scalars())


def every_page(session: Session, c: Criteria, *, letters: bool, cap: int) -> Iterator[LeadRow | LetterRow]:
    """Every matching row, newest first, page by page (for an export), at most ``cap`` rows."""
    after: int | None = None
    sent = 0
    while sent < cap:
        size = min(EXPORT_PAGE, cap - sent)
        page: Page[Any] = (
            find_letters(session, c, after=after, limit=size)
            if letters
            else find_leads(session, c, after=after, limit=size)
        )
        yield from page.rows
        sent += len(page.rows)
        if page.next_cursor is None:
            return
        after = page.next_cursor
