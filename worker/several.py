"""A mail that holds several leads, recorded as one ledger item per lead beside it.

The leads of a digest or of a table attached (adapters/pieces.py) become ledger
items of their own — source ``email``, ``raw_meta.parent`` the mail's lead,
``raw_meta.part`` which lead it is — each deduplicated, delivered and
dead-lettered alone. Their intake keys (worker/imap/keys.py) make a second
recording of the same mail add nothing. The mail itself is settled: ``ignored``
with a note naming its parts, or a ``parse_error`` dead letter when a table of
leads could not be read. The inbox poller does this at the door; the worker
does it for mail that reaches it whole (rerouted, or replayed after a sender
check held it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from leadrelay.adapters.pieces import Split
from leadrelay.intake.store import record_inbound
from leadrelay.ledger import kill, transition
from leadrelay.models import DeadReason, LeadState
from leadrelay.worker.imap.keys import piece_key


@dataclass(frozen=True, slots=True)
class Parts:
    lead_ids: tuple[int, ...]  # the leads recorded now (not those already in the ledger)
    failed: bool  # the mail became a dead letter (a table of leads that cannot be read)


def record_parts(
    session: Session,
    *,
    lead_id: int,
    key: str,
    channel: str,
    split: Split,
    meta: dict[str, Any],
    from_state: LeadState = LeadState.received,
    **values: Any,
) -> Parts:
    """Each lead of the mail ``lead_id`` (intake key ``key``) as a ledger item; the mail settled."""
    kept = {k: v for k, v in meta.items() if k not in ("body_sha256", "parent", "part")}
    recorded: list[int] = []
    known = 0
    for piece in split.pieces:
        intake = record_inbound(
            session,
            channel=channel,
            source="email",
            intake_key=piece_key(key, channel, piece.key, by_content=piece.by_content),
            body=piece.body,
            content_type=piece.content_type,
            meta={**kept, "parent": lead_id, "part": piece.part},
        )
        if intake.duplicate:
            known += 1
        else:
            recorded.append(intake.lead_id)
    what = "a digest of" if split.kind == "digest" else "a table of"
    note = f"{what} {len(split.pieces)} leads, recorded one by one" + (
        f" ({known} already in the ledger)" if known else ""
    )
    if split.problems:
        kill(
            session,
            lead_id,
            from_states=[from_state],
            reason=DeadReason.parse_error,
            message="; ".join(split.problems)[:500] + (f" ({note})" if split.pieces else ""),
            detail={
                "source": "email",
                "channel": channel,
                "parts": len(split.pieces),
                "inbox": meta.get("inbox"),
            },
        )
        return Parts(tuple(recorded), failed=True)
    transition(session, lead_id, from_states=[from_state], to=LeadState.ignored, note=note, **values)
    return Parts(tuple(recorded), failed=False)


SPLIT_CHECKED = "pieces"  # raw_meta: how many leads the door found in the mail (0: it is one lead)


def unsplit(meta: dict[str, Any] | None, content_type: str | None) -> bool:
    """A whole mail no one has yet looked for several leads in (not a lead split from one)."""
    meta = meta or {}
    return content_type == "message/rfc822" and "parent" not in meta and SPLIT_CHECKED not in meta
