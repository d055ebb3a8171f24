"""The door log: the last N webhook requests the door refused, per channel, without their bodies.

What a partner's failing integration looks like from here, so a signature problem
can be diagnosed from the admin page: when, the answer (status, error, message),
the source address, the headers with every secret removed, and the body's SHA-256
and size — never the body.

Recording must not slow or break the door: :meth:`DoorLog.record` schedules the
write on the event loop and returns; the write runs on the intake store's own
connections (the receiver's psycopg pool on Postgres), inserts the row and trims
the channel to its newest ``door_log_size`` rows in the same round trip's
transaction; at most :data:`PENDING` writes wait at once (more are dropped and
counted), and a failure is logged and swallowed.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import BigInteger, Index, Integer, Select, String, bindparam, insert, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from leadrelay.db import Base, UtcDateTime, utcnow

if TYPE_CHECKING:  # the store imports the ledger's models, and they this table
    from leadrelay.intake.store import IntakeStore

log = structlog.get_logger(__name__)

UNKNOWN_CHANNEL = "(unknown)"  # requests for a channel that does not exist: one bounded list for all
PENDING = 64  # writes waiting at once; a flood of refusals beyond that is counted, not stored
MAX_HEADERS = 40
MAX_HEADER_CHARS = 300
MAX_MESSAGE_CHARS = 500
REDACTED = "[removed]"
# a header whose name says it carries a credential: its value is never stored
_SECRET_HEADER = re.compile(
    r"auth|cookie|secret|token|signature|password|passwd|key|session|credential", re.I
)
_Id = BigInteger().with_variant(Integer(), "sqlite")


class DoorRejection(Base):
    __tablename__ = "door_rejections"

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    channel: Mapped[str] = mapped_column(String(100))
    status: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(MAX_MESSAGE_CHARS))
    source: Mapped[str | None] = mapped_column(String(100))
    headers: Mapped[str] = mapped_column(String(20_000))  # "name: value" lines, secrets removed
    body_sha256: Mapped[str | None] = mapped_column(String(64))  # None: not read (too large)
    body_bytes: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_door_rejections_channel_id", "channel", "id"),)


def safe_headers(headers: Iterable[tuple[str, str]]) -> str:
    """The request's headers as ``name: value`` lines, credentials removed, each line and the count capped."""
    lines = []
    for count, (name, value) in enumerate(headers):
        if count >= MAX_HEADERS:
            lines.append(f"… {REDACTED} more headers not kept")
            break
        shown = REDACTED if _SECRET_HEADER.search(name) else value[:MAX_HEADER_CHARS]
        lines.append(f"{name[:100].lower()}: {shown}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused request, as the door log keeps it."""

    channel: str
    status: int
    error: str
    message: str
    source: str | None
    headers: str
    body_sha256: str | None
    body_bytes: int | None
    at: datetime = field(default_factory=utcnow)

    @classmethod
    def of(
        cls,
        channel: str,
        status: int,
        error: str,
        message: str,
        *,
        source: str | None,
        headers: Iterable[tuple[str, str]],
        body: bytes | None,
        declared_bytes: int | None = None,
    ) -> Rejection:
        return cls(
            channel=channel[:100],
            status=status,
            error=error[:40],
            message=message[:MAX_MESSAGE_CHARS],
            source=source[:100] if source else None,
            headers=safe_headers(headers),
            body_sha256=hashlib.sha256(body).hexdigest() if body is not None else None,
            body_bytes=len(body) if body is not None else declared_bytes,
        )

    def statements(self, keep: int) -> list[tuple[Any, dict[str, Any]]]:
        """Insert this row, then trim its channel to the newest ``keep``."""
        row = {name: getattr(self, name) for name in _COLUMNS}
        return [(INSERT, row), (TRIM, {"channel": self.channel, "keep": keep})]


_COLUMNS = ("at", "channel", "status", "error", "message", "source", "headers", "body_sha256", "body_bytes")
_TABLE = DoorRejection.__table__.c
INSERT = insert(DoorRejection).values({name: bindparam(name, type_=_TABLE[name].type) for name in _COLUMNS})
# everything older than the channel's newest `keep` rows (portable: Postgres and SQLite)
TRIM = text(
    "DELETE FROM door_rejections WHERE channel = :channel AND id <= "
    "(SELECT id FROM door_rejections WHERE channel = :channel ORDER BY id DESC LIMIT 1 OFFSET :keep)"
)


class DoorLog:
    """Records refusals in the background, on the intake store's connections."""

    def __init__(self, store: IntakeStore, *, keep: int, pending: int = PENDING) -> None:
        self.store = store
        self.keep = keep
        self.pending = pending
        self.dropped = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def record(self, rejection: Rejection) -> None:
        """Schedule the write and return at once (call on the event loop)."""
        if len(self._tasks) >= self.pending:
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("door_log_dropped", dropped=self.dropped)
            return
        task = asyncio.get_running_loop().create_task(self._write(rejection))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, rejection: Rejection) -> None:
        try:
            await self.store.execute(rejection.statements(self.keep))
        except Exception as exc:  # the door answered already: a lost log line is not worth more
            log.warning("door_log_failed", error=type(exc).__name__)

    async def drain(self) -> None:
        """Wait for the writes scheduled so far (tests, and the app's shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))


def door_log(state: Any) -> DoorLog:
    """The app's door log, made on first use from its intake store and settings."""
    found: DoorLog | None = getattr(state, "door_log", None)
    if found is None or found.store is not state.intake_store:
        found = state.door_log = DoorLog(state.intake_store, keep=state.runtime.settings.door_log_size)
    return found


def recent(session: Session, *, channel: str | None = None, limit: int = 200) -> Sequence[DoorRejection]:
    """The newest refusals first, of one channel or all."""
    query: Select[DoorRejection] = select(DoorRejection).order_by(DoorRejection.id.desc()).limit(limit)
    if channel:
        query = query.where(DoorRejection.channel == channel)
    return session.execute(query).scalars().all()
