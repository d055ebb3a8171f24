"""Follow-up events: what a portal says later about an enquiry, and what an account lets them change.

A follow-up (an update, a viewing booked or cancelled, a withdrawal) is never a
new opportunity: it is merged into the one its enquiry made (docs/guarantees.md,
"Follow-ups"). By default it only adds a dated note; each change beyond the note
is an account's choice.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from leadrelay.nexudus.enums import LossReason
from leadrelay.routing.base import StrictModel


class FollowUpKind(StrEnum):
    updated = "updated"  # requirements, dates or contact changed
    viewing_booked = "viewing_booked"  # booked, confirmed or moved
    viewing_cancelled = "viewing_cancelled"
    withdrawn = "withdrawn"  # withdrawn or closed by the client

    @property
    def heading(self) -> str:
        return _HEADINGS[self]


_HEADINGS = {
    FollowUpKind.updated: "Enquiry updated",
    FollowUpKind.viewing_booked: "Viewing booked",
    FollowUpKind.viewing_cancelled: "Viewing cancelled",
    FollowUpKind.withdrawn: "Withdrawn by the client",
}


class FollowUpOptions(StrictModel):
    """What a follow-up may change on an opportunity besides adding its note (all off by default)."""

    apply_fields: bool = Field(
        default=False,
        description="an update's new budget, term or start date rewrites the opportunity's Value and DueDate",
    )
    close_on_withdrawal: bool = Field(
        default=False, description="a withdrawal sets the opportunity's Status to Lost with loss_reason"
    )
    loss_reason: LossReason = Field(
        default=LossReason.Other, description="the Nexudus LossReason a withdrawal records (1-20, 99)"
    )
    withdrawn_column_id: int | None = Field(
        default=None, description="a withdrawal moves the opportunity to this CrmBoardColumn"
    )
    reopen_closed: bool = Field(
        default=False,
        description="an update or a booked viewing on a Won/Lost opportunity sets it InProgress again "
        "(otherwise a closed opportunity only gets the note)",
    )
