"""What becomes of a mail the inbox stored: the door's decisions, taken by the worker that reads it.

The poll stores each fetched message raw (worker/imap/store.py), marked
``unsorted``, under the ``unrouted`` channel (the inbox's ``channel`` beside it). The worker that
first reads it sorts it (:func:`sort_message`) in the transaction that reads it.
The channel comes from the mail itself (the original sender through forwards,
the portal named in the content), else the inbox's. A mail nothing assigns is
parked — nothing is lost: as ``ignored`` when it is surely no lead (a bounce, an
auto-reply), else as a ``parse_error`` dead letter that says how to route it.
Mail of a channel that verifies its senders and whose sender is not proven
(worker/imap/trust.py) becomes an ``unverified_sender`` dead letter, never read
as a lead until an admin replays it.

A mail that holds several leads — a digest, a CSV or XLSX of leads attached
(adapters/pieces.py) — is settled as ``ignored`` with a note naming its parts,
and each lead is recorded beside it as a ledger item of its own
(``raw_meta.parent``, ``raw_meta.part``): each is deduplicated, delivered or
dead-lettered alone. A table that cannot be read makes the mail a
``parse_error`` dead letter that says why (its other leads are still recorded).
Every mail's attachments are listed in ``raw_meta.attachments``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from leadrelay.adapters.base import configured_limits
from leadrelay.adapters.detect import detect_channel
from leadrelay.adapters.mail.attachments import described
from leadrelay.adapters.mail.classify import not_a_lead
from leadrelay.adapters.mail.forwards import unwrap
from leadrelay.adapters.mail.message import read_mail
from leadrelay.adapters.pieces import Split, split_item
from leadrelay.adapters.registry import adapter_for
from leadrelay.ledger import kill, transition
from leadrelay.models import DeadReason, Lead, LeadState
from leadrelay.routing import Routing
from leadrelay.worker.imap.trust import MailTrust, verify
from leadrelay.worker.several import SPLIT_CHECKED, record_parts

UNROUTED = "unrouted"  # the channel of mail no sender, content or inbox default assigns (or not yet sorted)
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
    settled: Outcome | None = None  # settled now (a duplicate, too big, unrouted…); None: to be read
    reason: DeadReason = DeadReason.parse_error  # of a dead letter opened now
    parts: tuple[int, ...] = ()  # the new leads recorded from a mail that holds several

    @property
    def queued(self) -> bool:
        """For a worker: a stored mail to sort, or a mail sorted as one lead to read."""
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


UNSORTED = "unsorted"  # raw_meta: stored by the poll, not yet read by a worker (sort_message)
DEFAULT_CHANNEL = "inbox_channel"  # raw_meta of an unsorted mail: its inbox's channel, for the sort


def unsorted(meta: dict[str, Any] | None) -> bool:
    """A mail the poll stored raw, whose channel, sender and leads no worker has looked at yet."""
    return bool((meta or {}).get(UNSORTED))


def channel_from(detected: str | None, default: str | None) -> str | None:
    return "mail" if detected else ("inbox" if default else None)


def sort_message(
    session: Session,
    lead: Lead,
    *,
    routing: Routing,
    trust: MailTrust | None = None,
    **values: Any,
) -> Recorded:
    """What the door used to decide of a stored mail, decided by whoever reads it first (the worker).

    The channel comes from the mail itself, else the one it was stored under; a mail
    nothing assigns is parked (ignored or an ``unrouted`` dead letter), mail of a
    channel that verifies senders from an unproven sender is held
    (``unverified_sender``), and a mail of several leads is settled beside its
    leads. Else the lead's channel and ``raw_meta`` are set and it stays
    ``received``, to be read. ``values``: also set on a lead this settles (the
    worker's reading lease given back).
    """
    raw, meta = lead.raw_body or b"", dict(lead.raw_meta or {})
    meta.pop(UNSORTED, None)
    inbox = str(meta.get("inbox", ""))
    place = Place(
        inbox,
        str(meta.get("folder", "")),
        int(meta.get("uidvalidity", 0)),
        int(meta.get("uid", 0)),
    )
    config = routing.inboxes.get(inbox)
    default = meta.pop(DEFAULT_CHANNEL, None) or (config.channel if config else None)
    detected = detect_channel(raw, routing.channels)
    channel = detected or default
    verdict = None
    if channel is not None:
        trust = trust or MailTrust.of(inbox, config)
        verdict = verify(raw, channel=channel, routing=routing, trust=trust)
    split = Split()
    checked = channel is not None and (verdict is None or verdict.trusted)
    if channel is not None and checked:
        split = _split(raw, channel, routing)
    meta |= {
        "channel_from": channel_from(detected, default),
        **({"sender_check": verdict.check} if verdict else {}),
        **described(list(split.attachments)),
        **({SPLIT_CHECKED: len(split.pieces)} if checked else {}),
    }
    lead.channel, lead.raw_meta = channel or UNROUTED, meta
    session.flush()
    if channel is None:
        return Recorded(place.uid, lead.id, channel, settled=_park(session, lead.id, raw, place, **values))
    if verdict is not None and not verdict.trusted:
        surely = _not_a_lead(raw, read_quotes=True)
        if surely is not None:  # a bounce or an auto-reply: ignored whoever sent it, never read further
            note = f"this is {surely}, from a sender not proven ({verdict.check})"
            transition(
                session, lead.id, from_states=[LeadState.received], to=LeadState.ignored, note=note, **values
            )
            return Recorded(place.uid, lead.id, channel, settled=Outcome.ignored)
        kill(
            session,
            lead.id,
            from_states=[LeadState.received],
            reason=DeadReason.unverified_sender,
            message=verdict.message,
            detail={"inbox": inbox, "source": "email", "channel": channel, "check": verdict.check},
        )
        return Recorded(
            place.uid, lead.id, channel, settled=Outcome.failed, reason=DeadReason.unverified_sender
        )
    if split.kind is not None:
        parts = record_parts(
            session, lead_id=lead.id, key=lead.intake_key, channel=channel, split=split, meta=meta, **values
        )
        settled = Outcome.failed if parts.failed else Outcome.several
        return Recorded(place.uid, lead.id, channel, settled=settled, parts=parts.lead_ids)
    return Recorded(place.uid, lead.id, channel)


def _split(raw: bytes, channel: str, routing: Routing) -> Split:
    try:
        adapter = adapter_for(channel, routing.channels[channel])
    except Exception:  # no adapter: the worker says so in a dead letter
        return Split()
    return split_item(adapter, raw, configured_limits())


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


def _park(session: Session, lead_id: int, raw: bytes, place: Place, **values: Any) -> Outcome:
    """Mail no channel claims: ignored when it is surely no lead (a bounce), else a dead letter."""
    reason = _not_a_lead(raw)
    if reason:
        note = f"this is {reason}"
        transition(
            session, lead_id, from_states=[LeadState.received], to=LeadState.ignored, note=note, **values
        )
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
