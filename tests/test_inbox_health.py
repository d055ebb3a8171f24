"""An inbox's state from its ledger row: ok, failing, stale (by failures in a row, or by
time without a finished pass) and never polled; its summary carries no secrets."""

from __future__ import annotations

from datetime import datetime, timedelta

from leadrelay.db import utcnow
from leadrelay.inbox_health import _state
from leadrelay.models import MailboxState

NOW = utcnow()
INTERVAL, INTERVALS = 60.0, 2


def row(**values: object) -> MailboxState:
    return MailboxState(**{"inbox": "leads", "source": "s", "last_uid": 0, "failures": 0, **values})


def state(mailbox: MailboxState) -> str:
    return _state(mailbox, INTERVALS * INTERVAL, INTERVALS, NOW)[0]


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_states() -> None:
    assert state(row()) == "never polled"
    assert state(row(polled_at=ago(5), last_ok_at=ago(5))) == "ok"
    assert state(row(polled_at=ago(5), last_ok_at=ago(65), failures=1, failing_since=ago(5))) == "failing"
    # two failed passes in a row: stale at once, even within two intervals of the last success
    assert state(row(polled_at=ago(5), last_ok_at=ago(70), failures=2, failing_since=ago(65))) == "stale"
    # no pass has finished for two intervals (no poller at all): stale without a single failure
    assert state(row(polled_at=ago(121), last_ok_at=ago(121))) == "stale"
    # never worked, failing for longer than two intervals
    assert state(row(polled_at=ago(1), failures=1, failing_since=ago(200))) == "stale"
    assert state(row(polled_at=ago(1), failures=1, failing_since=ago(20))) == "failing"


def test_the_ok_age_is_measured_from_the_last_finished_pass() -> None:
    _, age = _state(row(polled_at=NOW, last_ok_at=NOW - timedelta(seconds=30)), 120, 2, NOW)
    assert age == 30
