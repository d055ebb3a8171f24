"""The publish path writes the message's argsrepr/kwargsrepr itself: exactly what Celery would write."""

from __future__ import annotations

from celery.utils.saferepr import saferepr

from leadrelay.worker.queue import NO_KWARGS_REPR, args_repr


def test_reprs_match_celerys_own_for_lead_ids() -> None:
    for lead_id in (0, 1, 7, 42, 10**6, 2**31 - 1, 2**63 - 1):
        assert args_repr(lead_id) == saferepr([lead_id], 1024)
    assert saferepr({}, 1024) == NO_KWARGS_REPR
