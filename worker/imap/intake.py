"""One fetched message into the ledger: its channel, its intake key, its raw bytes.

The channel comes from the mail itself (the original sender through forwards, the
portal named in the content), else the inbox's ``channel``. A mail nothing
assigns is still recorded — nothing is lost: as ``ignored`` when it is surely no
lead (a bounce, an auto-reply), else as a ``parse_error`` dead letter that says
how to route it. A message over the size limit is recorded too (as much of it as
was fetched), routed by its headers alone, as a ``parse_error`` dead letter. Mail
of a channel that verifies its senders and whose sender is not proven
(worker/imap/trust.py) is recorded as an ``unverified_sender`` dead letter: held,
never handed to a worker, until an admin replays it.

A mail that holds several leads — a digest, a CSV or XLSX of leads attached
(adapters/pieces.py) — is recorded as it is, settled as ``ignored`` with a note
naming its parts, and each lead is recorded beside it as a ledger item of its
own (``raw_meta.parent``, ``raw_meta.part``) for the worker: each is
deduplicated, delivered or dead-lettered alone. A table that cannot be read
makes the mail a ``parse_error`` dead letter that says why (its other leads are
still recorded). Every mail's attachments are listed in ``raw_meta.attachments``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from leadrelay.adapters.base import configured_limits
from leadrelay.adapters.detect import detect_channel
from leadrelay.adapters.from_email import too_big
from leadrelay.adapters.mail.attachments import described
from leadrelay.adapters.mail.classify import not_a_lead
from leadrelay.adapters.mail.forwards import unwrap
from leadrelay.adapters.mail.message import read_mail
from leadrelay.adapters.pieces import Split, split_item
from leadrelay.adapters.registry import adapter_for
from leadrelay.intake.store import Intake, record_inbound
from leadrelay.ledger import kill, transition
from leadrelay.models import DeadReason, Lead, LeadState
from leadrelay.routing import Routing
from leadrelay.worker.imap.keys import MailKeys, body_sha256, header_block, mail_keys
from leadrelay.worker.imap.trust import MailTrust, verify
from leadrelay.worker.several import SPLIT_CHECKED, record_parts

UNROUTED = "unrouted"  # the channel of mail no sender, content or inbox default assigns
CONTENT_TYPE = "message/rfc822"


class Outcome(StrEnum):
    new = "new"  # recorded, reads as a lead
    duplicate = "duplicate"  # already in the ledger: not recorded again
    ignored = "ignored"  # recorded, but not a lead (auto-reply, newsletter, bounce…)
    failed = "failed"  # recorded, but cannot become a lead as it is: a dead letter
    several = "several"  # recorded, and its several leads beside it (a digest, a table of leads)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a message was found: kept in the lead's ``raw_meta``."""

    inbox: str
    folder: str
    uidvalidity: int
    uid: int


@dataclass(frozen=True, slots=True)
class Size:
    """How big a message is (``RFC822.SIZE``) and how big it may be to be read."""

    total: int
    limit: int

    def over(self) -> bool:
        return self.total > self.limit


@dataclass(frozen=True, slots=True)
class Recorded:
    uid: int
    lead_id: int
    channel: str | None  # None: nothing said which channel
    settled: Outcome | None = None  # known at the door (a duplicate, unrouted mail); else the worker's
    reason: DeadReason = DeadReason.parse_error  # of a dead letter opened at the door
    parts: tuple[int, ...] = ()  # the new leads recorded from a mail that holds several

    @property
    def queued(self) -> bool:
        """A new lead for the worker (unrouted mail is settled at the door)."""
        return self.settled is None

    @property
    def for_worker(self) -> tuple[int, ...]:
        """The ids to enqueue: the mail's own, or the leads split from it."""
        return (self.lead_id,) if self.queued else self.parts


def unrouted_message(inbox: str) -> str:
    return (
        f"no channel recognises this mail from inbox {inbox!r}: set inboxes.{inbox}.channel, or add the "
        "sender's domain to a channel's parse.senders in the routing file; the next poll of the inbox "
        "then routes it and replays it"
    )


def _same_message(session: Session, lead_id: int, digest: str) -> bool:
    meta = session.execute(select(Lead.raw_meta).where(Lead.id == lead_id)).scalar_one() or {}
    known = meta.get("body_sha256")
    if known is None:
        raw = session.execute(select(Lead.raw_body).where(Lead.id == lead_id)).scalar_one()
        known = body_sha256(raw) if raw is not None else digest
    return known == digest


def _held(session: Session, keys: MailKeys) -> int | None:
    """The lead that already holds this very message — looked up before the mail is read."""
    first = session.execute(select(Lead.id).where(Lead.intake_key == keys.primary)).scalar_one_or_none()
    if first is None or keys.reused_id is None or _same_message(session, first, keys.body_sha256):
        return first
    return session.execute(select(Lead.id).where(Lead.intake_key == keys.reused_id)).scalar_one_or_none()


def _record(session: Session, raw: bytes, key: str, channel: str | None, meta: dict[str, Any]) -> Intake:
    return record_inbound(
        session,
        channel=channel or UNROUTED,
        source="email",
        intake_key=key,
        body=raw,
        content_type=CONTENT_TYPE,
        meta=meta,
    )


def record_message(
    session: Session,
    raw: bytes,
    *,
    place: Place,
    routing: Routing,
    default: str | None,
    size: Size | None = None,
    trust: MailTrust | None = None,
) -> Recorded:
    """Record one message once: a copy found again (any mailbox, any UID) is a duplicate.

    ``size``: the whole message's, when ``raw`` may be only its beginning. ``trust``: what
    the inbox believes of its mail's authentication (default: the routing's entry for
    ``place.inbox``); a channel that verifies senders holds mail that fails it.
    """
    keys = mail_keys(raw)
    held = _held(session, keys)
    if held is not None:  # a re-scan or a retried batch: no need to read the mail again
        return Recorded(place.uid, held, None, settled=Outcome.duplicate)
    oversized = size is not None and size.over()
    detected = detect_channel(header_block(raw) if oversized else raw, routing.channels)
    channel = detected or default
    verdict = None
    if channel is not None and not oversized:
        trust = trust or MailTrust.of(place.inbox, routing.inboxes.get(place.inbox))
        verdict = verify(raw, channel=channel, routing=routing, trust=trust)
    split = Split()
    checked = channel is not None and not oversized and (verdict is None or verdict.trusted)
    if channel is not None and checked:
        split = _split(raw, channel, routing)
    meta = {
        "inbox": place.inbox,
        "folder": place.folder,
        "uidvalidity": place.uidvalidity,
        "uid": place.uid,
        "body_sha256": keys.body_sha256,
        "channel_from": "mail" if detected else ("inbox" if default else None),
        **({"size": size.total, "truncated": len(raw) < size.total} if size and oversized else {}),
        **({"sender_check": verdict.check} if verdict else {}),
        **described(list(split.attachments)),
        **({SPLIT_CHECKED: len(split.pieces)} if checked else {}),
    }
    key = keys.primary
    intake = _record(session, raw, key, channel, meta)
    if intake.duplicate and keys.reused_id and not _same_message(session, intake.lead_id, keys.body_sha256):
        key = keys.reused_id
        intake = _record(session, raw, key, channel, meta)
    if intake.duplicate:
        return Recorded(place.uid, intake.lead_id, channel, settled=Outcome.duplicate)
    if size is not None and oversized:
        _refuse(session, intake.lead_id, len(raw), size, place, channel)
        return Recorded(place.uid, intake.lead_id, channel, settled=Outcome.failed)
    if channel is None:
        return Recorded(
            place.uid, intake.lead_id, channel, settled=_park(session, intake.lead_id, raw, place)
        )
    if verdict is not None and not verdict.trusted and _not_a_lead(raw, read_quotes=True) is None:
        kill(
            session,
            intake.lead_id,
            from_states=[LeadState.received],
            reason=DeadReason.unverified_sender,
            message=verdict.message,
            detail={"inbox": place.inbox, "source": "email", "channel": channel, "check": verdict.check},
        )
        return Recorded(
            place.uid, intake.lead_id, channel, settled=Outcome.failed, reason=DeadReason.unverified_sender
        )
    if split.kind is not None:
        parts = record_parts(
            session, lead_id=intake.lead_id, key=key, channel=channel, split=split, meta=meta
        )
        settled = Outcome.failed if parts.failed else Outcome.several
        return Recorded(place.uid, intake.lead_id, channel, settled=settled, parts=parts.lead_ids)
    return Recorded(place.uid, intake.lead_id, channel)


def _split(raw: bytes, channel: str, routing: Routing) -> Split:
    try:
        adapter = adapter_for(channel, routing.channels[channel])
    except Exception:  # no adapter: the worker says so in a dead letter
        return Split()
    return split_item(adapter, raw, configured_limits())


def _refuse(session: Session, lead_id: int, kept: int, size: Size, place: Place, channel: str | None) -> None:
    """Mail too big to read: a dead letter at once, so that no worker tries."""
    kill(
        session,
        lead_id,
        from_states=[LeadState.received],
        reason=DeadReason.parse_error,
        message=too_big(size.total, size.limit, kept=kept if kept < size.total else None),
        detail={"inbox": place.inbox, "source": "email", "channel": channel or UNROUTED, "size": size.total},
    )


def _not_a_lead(raw: bytes, *, read_quotes: bool = False) -> str | None:
    """What the mail surely is when it is no lead (a bounce, a reply): the adapter ignores it too.

    ``read_quotes``: a reply that quotes another message may be read as the lead it
    quotes, so it is not surely no lead — from an unproven sender it is held like
    any other lead. Without a channel a reply is ignored whatever it quotes.
    """
    try:
        mail = read_mail(raw)
        layers = unwrap(mail)
        subjects = tuple(layer.subject for layer in layers)
        return not_a_lead(mail, subjects, quotes_original=read_quotes and len(layers) > 1)
    except Exception:  # unreadable mail is for an operator to look at
        return None


def _park(session: Session, lead_id: int, raw: bytes, place: Place) -> Outcome:
    """Mail no channel claims: ignored when it is surely no lead (a bounce), else a dead letter."""
    reason = _not_a_lead(raw)
    if reason:
        note = f"this is {reason}"
        transition(session, lead_id, from_states=[LeadState.received], to=LeadState.ignored, note=note)
        return Outcome.ignored
    kill(
        session,
        lead_id,
        from_states=[LeadState.received],
        reason=DeadReason.parse_error,
        message=unrouted_message(place.inbox),
        detail={"inbox": place.inbox, "source": "email", "channel": UNROUTED},
    )
    return Outcome.failed
