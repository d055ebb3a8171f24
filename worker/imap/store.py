"""The inbox poll's side of the door: each fetched message stored raw, once.

Nothing of a message is read but the headers its intake keys come from
(worker/imap/keys.py): it is committed as a ``received`` lead under the
``unrouted`` channel, marked ``unsorted`` for the worker, who sorts it
(worker/imap/intake.py). A copy found again — any mailbox, any UID — is a
duplicate; a different message reusing a Message-ID goes under its second key.
A message over the size limit is the one decision taken here: it is recorded
(as much of it as was fetched), routed by its headers alone, as a
``parse_error`` dead letter, so that no worker tries to read it.
:func:`record_message` stores and sorts at once (one-shot imports, the demo).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from leadrelay.adapters.detect import detect_channel
from leadrelay.adapters.from_email import too_big
from leadrelay.db import utcnow
from leadrelay.intake.store import Inbound, Intake, record_inbound
from leadrelay.ledger import kill
from leadrelay.models import DeadReason, Lead, LeadState
from leadrelay.routing import Routing
from leadrelay.statements import INBOUND_HOLDERS, INBOUND_INSERT_ARRAYS, INBOUND_INSERT_KEYED, is_postgres
from leadrelay.worker.imap.intake import (
    CONTENT_TYPE,
    DEFAULT_CHANNEL,
    UNROUTED,
    UNSORTED,
    Outcome,
    Place,
    Recorded,
    Size,
    channel_from,
    sort_message,
)
from leadrelay.worker.imap.keys import MailKeys, body_sha256, header_block, mail_keys
from leadrelay.worker.imap.trust import MailTrust


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


Found = tuple[bytes, Place, Size | None]  # a fetched message: its bytes, where it was, how big it is


@dataclass(frozen=True, slots=True)
class _Holder:
    """Who holds an intake key: a lead in the ledger, or a message of this batch about to be stored."""

    lead_id: int | None
    body_sha256: str | None  # None: a row recorded before raw_meta kept the digest
    index: int | None = None  # the message of this batch stored under the key


def store_message(
    session: Session,
    raw: bytes,
    *,
    place: Place,
    routing: Routing,
    default: str | None,
    size: Size | None = None,
) -> Recorded:
    """Store one message raw, once: a copy found again (any mailbox, any UID) is a duplicate.

    Nothing of the mail is read but its headers' keys: the worker sorts it
    (:func:`sort_message`). Until then it is stored under the ``unrouted`` channel,
    ``default`` (the inbox's channel) kept in its ``raw_meta`` for the sort: a worker
    of an earlier release, which does not sort, makes such a lead a ``parse_error``
    dead letter (no channel) instead of reading it unchecked, and the inbox's next
    pass routes and replays it (worker/imap/reroute.py), sender check included.
    ``size``: the whole message's, when ``raw`` may be only its beginning — such a
    mail is routed by its headers alone and made a ``parse_error`` dead letter
    here, so that no worker tries to read it.
    """
    return store_messages(session, [(raw, place, size)], routing=routing, default=default)[0]


def store_messages(
    session: Session, found: Sequence[Found], *, routing: Routing, default: str | None
) -> list[Recorded]:
    """:func:`store_message` for each message in order, in two statements for a usual batch.

    One SELECT finds every key the batch's messages may be held under, one INSERT
    stores every new message (RETURNING each new id with its key). The decisions
    are the ones taken message by message: a copy of a message stored earlier in
    the batch is its duplicate, a different message reusing a Message-ID goes
    under its second key. A message whose key another poller stored meanwhile
    (not RETURNED) is decided again with the ledger's answer.
    """
    recorded: dict[int, Recorded] = {}
    readable = [i for i, (_, _, size) in enumerate(found) if size is None or not size.over()]
    keys = {i: mail_keys(found[i][0]) for i in readable}
    holders = _holders(session, {key for k in keys.values() for key in (k.primary, k.reused_id) if key})
    stored: list[tuple[int, str]] = []  # (message, intake key) to insert
    repeats: list[tuple[int, _Holder]] = []  # a message already held
    for i in readable:
        key, holder = _decide(session, keys[i], holders)
        if holder is not None:
            repeats.append((i, holder))
            continue
        holders[key] = _Holder(None, keys[i].body_sha256, index=i)
        stored.append((i, key))
    ids = _insert(session, [(found[i], key, keys[i], default) for i, key in stored])
    again = [i for i, key in stored if key not in ids]  # stored meanwhile by another poller
    if again:
        retried = store_messages(session, [found[i] for i in again], routing=routing, default=default)
        recorded.update(zip(again, retried, strict=True))
    for i, key in stored:
        if key in ids:
            recorded[i] = Recorded(found[i][1].uid, ids[key], None)
    for i, holder in repeats:
        lead_id = recorded[holder.index].lead_id if holder.index is not None else holder.lead_id
        assert lead_id is not None  # a holder is a ledger row or a message of this batch
        recorded[i] = Recorded(found[i][1].uid, lead_id, None, settled=Outcome.duplicate)
    for i, (raw, place, size) in enumerate(found):
        if size is not None and size.over():
            recorded[i] = _store_oversized(
                session, raw, place=place, routing=routing, default=default, size=size
            )
    return [recorded[i] for i in range(len(found))]


def _holders(session: Session, keys: set[str]) -> dict[str, _Holder]:
    if not keys:
        return {}
    rows = session.execute(INBOUND_HOLDERS(session), {"keys": sorted(keys)})
    return {key: _Holder(lead_id, digest) for lead_id, key, digest in rows}


def _decide(session: Session, keys: MailKeys, holders: dict[str, _Holder]) -> tuple[str, _Holder | None]:
    """The key a message goes under, and who holds it already (None: store the message under it)."""
    first = holders.get(keys.primary)
    if first is None:
        return keys.primary, None
    if keys.reused_id is None or _same(session, first, keys.body_sha256):
        return keys.primary, first
    return keys.reused_id, holders.get(keys.reused_id)  # another message reusing the Message-ID


def _same(session: Session, holder: _Holder, digest: str) -> bool:
    if holder.body_sha256 is None and holder.lead_id is not None:
        return _same_message(session, holder.lead_id, digest)
    return holder.body_sha256 == digest


def _insert(session: Session, rows: list[tuple[Found, str, MailKeys, str | None]]) -> dict[str, int]:
    """Each message raw under its key, unsorted, in one statement: the new ids by key."""
    if not rows:
        return {}
    now = utcnow()
    values = [
        Inbound(
            channel=UNROUTED,
            source="email",
            intake_key=key,
            body=raw,
            content_type=CONTENT_TYPE,
            meta={**_where(place, keys), UNSORTED: True, **({DEFAULT_CHANNEL: default} if default else {})},
        ).values(now)
        for (raw, place, _), key, keys, default in rows
    ]
    if not is_postgres(session):
        result = session.connection().execute(INBOUND_INSERT_KEYED(session), values)
        return {key: lead_id for lead_id, key in result}
    first = values[0]  # channel, source, content type and time: the same for the whole batch
    arrays = {
        **{name: first[name] for name in ("channel", "source", "content_type", "at")},
        "keys": [v["intake_key"] for v in values],
        "bodies": [v["body"] for v in values],
        "sha256s": [v["sha256"] for v in values],
        "metas": [json.dumps(v["meta"]) for v in values],
    }
    result = session.connection().exec_driver_sql(INBOUND_INSERT_ARRAYS, arrays)
    return {key: lead_id for lead_id, key in result}


def _where(place: Place, keys: MailKeys) -> dict[str, Any]:
    return {
        "inbox": place.inbox,
        "folder": place.folder,
        "uidvalidity": place.uidvalidity,
        "uid": place.uid,
        "body_sha256": keys.body_sha256,
    }


def _store_oversized(
    session: Session, raw: bytes, *, place: Place, routing: Routing, default: str | None, size: Size
) -> Recorded:
    """A message too big to read: kept in part, routed by its headers, a dead letter at once."""
    keys = mail_keys(raw)
    held = _held(session, keys)
    if held is not None:
        return Recorded(place.uid, held, None, settled=Outcome.duplicate)
    detected = detect_channel(header_block(raw), routing.channels)
    channel = detected or default
    meta = {
        **_where(place, keys),
        "channel_from": channel_from(detected, default),
        "size": size.total,
        "truncated": len(raw) < size.total,
    }
    key = keys.primary
    intake = _record(session, raw, key, channel, meta)
    if intake.duplicate and keys.reused_id and not _same_message(session, intake.lead_id, keys.body_sha256):
        key = keys.reused_id
        intake = _record(session, raw, key, channel, meta)
    if intake.duplicate:
        return Recorded(place.uid, intake.lead_id, None, settled=Outcome.duplicate)
    _refuse(session, intake.lead_id, len(raw), size, place, channel)
    return Recorded(place.uid, intake.lead_id, channel, settled=Outcome.failed)


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
    """Store one message and sort it at once: the door's verdict in one call (imports, tests).

    The inbox poll only stores (:func:`store_message`); its workers sort. ``trust``:
    what the inbox believes of its mail's authentication (default: the routing's
    entry for ``place.inbox``).
    """
    stored = store_message(session, raw, place=place, routing=routing, default=default, size=size)
    if not stored.queued:
        return stored
    lead = session.get_one(Lead, stored.lead_id)
    return sort_message(session, lead, routing=routing, trust=trust)


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
