"""Ledger operations: guarded state transitions, attempts, audit.

Every transition is one UPDATE whose WHERE clause states what must still be
true (the state, the lease owner); ``rowcount == 1`` means this caller won. No
function here commits: the request or task that calls them owns the transaction.

- ``dbclock``: the ledger's clock
- ``transitions``: guarded state changes, releases and dead letters
- ``leases``: claiming a lead (to deliver, to read), renewing before each request
- ``records``: attempt rows and the audit trail
- ``locks``: an opportunity's note lock
"""

from leadrelay.ledger.dbclock import clock, db_now, now_param
from leadrelay.ledger.leases import (
    CreateTag,
    LeadRecord,
    claim,
    claimable,
    delivering,
    renew_lease,
    renew_lease_and_start_attempt,
    restore_create_sent,
    start_reading,
    state_is,
)
from leadrelay.ledger.locks import lock_opportunity, unlock_opportunity
from leadrelay.ledger.records import RESPONSE_EXCERPT, audit, start_attempt
from leadrelay.ledger.side_writes import SideWrite
from leadrelay.ledger.transitions import kill, release, transition, transition_then

__all__ = [
    "RESPONSE_EXCERPT",
    "CreateTag",
    "LeadRecord",
    "SideWrite",
    "audit",
    "claim",
    "claimable",
    "clock",
    "db_now",
    "delivering",
    "kill",
    "lock_opportunity",
    "now_param",
    "release",
    "renew_lease",
    "renew_lease_and_start_attempt",
    "restore_create_sent",
    "start_attempt",
    "start_reading",
    "state_is",
    "transition",
    "transition_then",
    "unlock_opportunity",
]
