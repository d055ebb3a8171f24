"""The note lock of an opportunity: one GET–merge–PUT at a time (it expires with its holder)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from leadrelay.db import insert_for
from leadrelay.ledger.dbclock import clock
from leadrelay.models import OpportunityLock


def lock_opportunity(
    session: Session, *, account: str, opportunity_id: int, owner: str, seconds: int
) -> bool:
    """Take the note lock of an opportunity (or an expired one); False while another holds it."""
    now = clock(session)  # one clock for every worker: a fast one must not take a live lock
    stmt = insert_for(session, OpportunityLock).values(
        account=account, opportunity_id=opportunity_id, owner=owner, until=now + timedelta(seconds=seconds)
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["account", "opportunity_id"],
        set_={"owner": stmt.excluded.owner, "until": stmt.excluded.until},
        where=OpportunityLock.until < now,
    ).returning(OpportunityLock.owner)
    return session.execute(stmt).scalar_one_or_none() == owner


def unlock_opportunity(session: Session, *, account: str, opportunity_id: int, owner: str) -> None:
    session.execute(
        delete(OpportunityLock).where(
            OpportunityLock.account == account,
            OpportunityLock.opportunity_id == opportunity_id,
            OpportunityLock.owner == owner,
        )
    )
