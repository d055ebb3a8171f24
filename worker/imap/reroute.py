"""Mail that no channel claimed, routed once the routing file says where it belongs.

Such mail is recorded as a ``parse_error`` dead letter under the ``unrouted``
channel. After an operator sets ``inboxes.<name>.channel`` or adds the sender to
a channel's ``parse.senders``, the next pass of that inbox gives each of its open
unrouted letters the channel the mail now maps to and replays it (audited, like
an admin's replay). A copy re-sent to the inbox would not help: it is a
duplicate at the door. A mail a worker of an earlier release could not read (it
was stored unsorted, under ``unrouted``) is replayed the same way; one whose
reading failed too often (``runs`` in its dead letter) is left to an operator.
Mail of a channel that verifies its senders is checked as when a worker sorts a
stored mail: one that fails becomes an ``unverified_sender`` dead letter.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from leadrelay.adapters.detect import detect_channel
from leadrelay.ledger import kill
from leadrelay.models import DeadLetter, DeadLetterStatus, DeadReason, Lead, LeadState
from leadrelay.routing import Routing
from leadrelay.worker.dead_letters import replay
from leadrelay.worker.imap.intake import UNROUTED, unsorted
from leadrelay.worker.imap.trust import MailTrust, verify


def reroute(session: Session, *, inbox: str, routing: Routing, default: str | None) -> list[int]:
    """Ids of this inbox's unrouted leads that now have a channel and were queued again."""
    stranded = session.execute(
        select(DeadLetter.id, DeadLetter.detail, Lead.id, Lead.raw_body, Lead.raw_meta)
        .join(Lead, Lead.id == DeadLetter.lead_id)
        .where(
            Lead.channel == UNROUTED,
            Lead.state == LeadState.dead,
            DeadLetter.status == DeadLetterStatus.open,
        )
        .order_by(Lead.id)
    ).all()
    queued: list[int] = []
    trust = MailTrust.of(inbox, routing.inboxes.get(inbox))
    for letter_id, detail, lead_id, raw, meta in stranded:
        if (meta or {}).get("inbox") != inbox or raw is None:
            continue
        if "runs" in (detail or {}):  # its reading failed too often: an operator's to look at, not a loop
            continue
        channel = detect_channel(raw, routing.channels) or default
        if channel is None:
            continue
        if unsorted(meta):  # never sorted (a worker of the previous release): the worker sorts it now
            if replay(session, letter_id, actor=f"inbox:{inbox}", routing=routing).enqueue:
                queued.append(lead_id)
            continue
        session.execute(
            update(Lead)
            .where(Lead.id == lead_id, Lead.channel == UNROUTED, Lead.state == LeadState.dead)
            .values(channel=channel)
            .execution_options(synchronize_session=False)
        )
        if not replay(session, letter_id, actor=f"inbox:{inbox}", routing=routing).enqueue:
            continue
        verdict = verify(raw, channel=channel, routing=routing, trust=trust)
        if verdict.trusted:
            queued.append(lead_id)
            continue
        kill(
            session,
            lead_id,
            from_states=[LeadState.received],
            reason=DeadReason.unverified_sender,
            message=verdict.message,
            detail={"inbox": inbox, "source": "email", "channel": channel, "check": verdict.check},
        )
    return queued
