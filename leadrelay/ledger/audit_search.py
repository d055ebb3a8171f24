"""The audit log, filtered and paged: who did what to which lead, newest first (keyset on the id)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import ColumnElement, Select, String, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from leadrelay.ledger.search import EXPORT_PAGE, MAX_PAGE, Page
from leadrelay.models import AuditEntry, DeadLetter

_Ts = TypeVarTuple("_Ts")


@dataclass(frozen=True, slots=True)
class AuditCriteria:
    actor: str | None = None  # the actor, or the start of it (``web:`` for every page user)
    action: str | None = None  # the action, or the start of it (``dead_letter.`` for every one)
    lead_id: int | None = None  # entries about this lead or one of its dead letters
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    result: str
    detail: dict[str, Any]

    @property
    def detail_text(self) -> str:
        return json.dumps(self.detail, ensure_ascii=False, sort_keys=True, default=str)


AUDIT_COLUMNS = tuple(f.name for f in fields(AuditRow))


def _starts(column: Any, text: str) -> ColumnElement[bool]:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%", escape="\\")  # type: ignore[no-any-return]


def _where(stmt: Select[*_Ts], c: AuditCriteria) -> Select[*_Ts]:
    where: list[ColumnElement[bool]] = []
    if c.actor:
        where.append(_starts(AuditEntry.actor, c.actor.strip()))
    if c.action:
        where.append(_starts(AuditEntry.action, c.action.strip()))
    if c.lead_id is not None:
        letters = select(literal("dead_letter:") + cast(DeadLetter.id, String)).where(
            DeadLetter.lead_id == c.lead_id
        )
        where.append(or_(AuditEntry.target == f"lead:{c.lead_id}", AuditEntry.target.in_(letters)))
    if c.since:
        where.append(AuditEntry.at >= c.since)
    if c.until:
        where.append(AuditEntry.at < c.until)
    return stmt.where(*where)


def find_audit(
    session: Session, c: AuditCriteria, *, after: int | None = None, limit: int = 50
) -> Page[AuditRow]:
    size = max(1, min(limit, MAX_PAGE))
    stmt = _where(select(*(getattr(AuditEntry, name) for name in AUDIT_COLUMNS)), c)
    if after is not None:
        stmt = stmt.where(AuditEntry.id < after)
    rows = [AuditRow(*row) for row in session.execute(stmt.order_by(AuditEntry.id.desc()).limit(size + 1))]
    return Page(rows[:size], rows[size - 1].id if len(rows) > size else None)


def count_audit(session: Session, c: AuditCriteria) -> int:
    return int(session.execute(_where(select(func.count()).select_from(AuditEntry), c)).scalar_one())


def every_entry(session: Session, c: AuditCriteria, *, cap: int) -> Iterator[AuditRow]:
    after: int | None = None
    sent = 0
    while sent < cap:
        page = find_audit(session, c, after=after, limit=min(EXPORT_PAGE, cap - sent))
        yield from page.rows
        sent += len(page.rows)
        if page.next_cursor is None:
            return
        after = page.next_cursor
