"""Speed to lead: the assigned salesperson (or the location's team) hears of a new opportunity.

Never sent twice, never lost:

- ``outbox``: the notifications a settled lead owes, written in the very
  transaction that settles it (delivered or attached), one row per opportunity
  made — or per later introduction — transport and recipient (a unique key,
  so a retried delivery, a replay or a partner's resend owes nothing more);
- ``sender``: rows claimed with a lease (``FOR UPDATE SKIP LOCKED``), sent, then
  marked sent under the claim; a failure waits and is tried again; a worker
  killed mid-send leaves its claim to expire, and the row is sent again — at
  worst a repeat the receiver can drop by its Message-ID / Idempotency-Key.
"""
