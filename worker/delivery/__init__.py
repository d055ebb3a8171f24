"""Stage 2: a normalised lead becomes one Coworker (found or created) and one CrmOpportunity.

At most one opportunity per enquiry, ever:

* the lead is leased by a guarded UPDATE on the ledger's clock, so two workers
  never deliver it at once;
* right before each request goes out (after the budget's wait, the token and the
  pacing) the lease is renewed and checked, and the request gets a total deadline
  shorter than the lease (:class:`attempts.RequestGuard`, :mod:`leadrelay.nexudus.deadline`):
  a worker that stalls past its lease sends nothing;
* a write's attempt row commits before it is sent; a create also marks the lead
  ``create_sent_at`` with the Name tag and SystemId it is sent under. That mark
  belongs to the enquiry: a replay and an edit keep it, a partner's resend that
  supersedes a dead lead inherits it. A lead carrying it looks the opportunity up
  before creating — and only concludes "not there" once a create sent then can no
  longer land (its deadline plus ``write_landing_seconds``). A definite refusal
  (an answer that created nothing) takes the mark back.

Round trips: each request's attempt row starts with its lease renewal (one
statement); its outcome and the coworker cache are written with the *next* ledger
write the delivery makes — the next request's lease renewal, or the final state
change — not in one of their own: on Postgres inside that statement
(:mod:`leadrelay.ledger.side_writes`), elsewhere in its transaction. Nothing the
exactly-once design relies on waits for them: the create mark commits before
the create is sent, and is only ever taken back after a definite refusal.

The parts, each used only by the ones after it:

- ``outcome``: :class:`Outcome`, what a run came to
- ``snapshot``: the ledger row as read once under the lease
- ``route``: where the lead goes (or why it cannot go anywhere)
- ``attempts``: the run's hold on the lead: lease renewal, attempt rows, pending writes
- ``policy``: how a run ends: settled, retried, throttled, waiting or dead
- ``customers``: the Coworker, found or created, and its cache in the ledger
- ``staff``: an open opportunity someone else made for a known customer
- ``notes``: a lead as a note on an existing opportunity, under the note lock
- ``flow``: one run's decisions (:class:`flow.Delivery`)
- ``stage``: :func:`deliver`, the entry: claim, read, run, flush
"""

from leadrelay.worker.delivery.outcome import Outcome
from leadrelay.worker.delivery.stage import deliver

__all__ = ["Outcome", "deliver"]
