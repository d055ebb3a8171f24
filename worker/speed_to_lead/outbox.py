"""What a settled lead owes staff: rows in ``notifications``, written in the settling transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from leadrelay.db import insert_for, utcnow
from leadrelay.models import Lead, Notification
from leadrelay.notifications.message import ATTACHED, CREATED
from leadrelay.routing import Routing
from leadrelay.worker.assignment import assigned_staff

ALL_LOCATIONS = "all"  # the recipient name of notifications.webhook


def owed(session: Session, routing: Routing, lead_id: int, *, attached: bool, opportunity_id: int) -> int:
    """Record the notifications a lead now settled owes; how many are new (0: already owed, or off)."""
    config = routing.notifications
    if not config.enabled:
        return 0  # read nothing: every delivery settles through here
    row = session.get(Lead, lead_id)
    if row is None or row.account is None or row.location is None:
        return 0
    event = ATTACHED if attached else CREATED
    staff_id = _staff_for(session, routing, row, attached=attached)
    member = routing.staff.get(staff_id) if staff_id is not None else None
    team = config.teams.get(row.location)
    recipients: list[tuple[str, str]] = []
    if config.email:
        if member is not None and member.email:
            recipients.append(("email", member.email))
        elif team is not None:
            recipients += [("email", address) for address in team.email]
    if team is not None and team.webhook is not None:
        recipients.append(("webhook", f"team:{row.location}"))
    if config.webhook is not None:
        recipients.append(("webhook", ALL_LOCATIONS))
    # one per opportunity made (a resend that finds it owes nothing), one per introduction attached
    about = f"{row.account}:{opportunity_id}" if not attached else f"lead:{lead_id}"
    now, added = utcnow(), 0
    for transport, recipient in recipients:
        inserted = session.execute(
            insert_for(session, Notification)
            .values(
                key=f"{event}:{about}:{transport}:{recipient}"[:400],
                lead_id=lead_id,
                event=event,
                transport=transport,
                recipient=recipient,
                staff_id=staff_id,
                account=row.account,
                opportunity_id=opportunity_id,
                intake_at=row.received_at,
                created_at=now,
                state="pending",
                attempts=0,
                next_attempt_at=now,
            )
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(Notification.id)
        ).scalar_one_or_none()
        added += inserted is not None
    return added


def _staff_for(session: Session, routing: Routing, row: Lead, *, attached: bool) -> int | None:
    """Whom the opportunity is assigned to: leadrelay's pick, else the location's responsible_id."""
    holder = row
    if attached and row.first_introduction not in (None, row.id):
        holder = session.get(Lead, row.first_introduction) or row
    picked = assigned_staff(session, holder.system_id)
    if picked is not None:
        return picked
    if attached and holder is row:
        return None  # a note on an opportunity staff made: leadrelay does not know whose it is
    location = routing.locations.get(row.location or "")
    return location.responsible_id if location is not None else None
