"""The overview's aggregate queries against what was written: on SQLite (the demo) and Postgres."""

from __future__ import annotations

import statistics
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from leadrelay.db import make_session_factory, utcnow
from leadrelay.ledger import overview
from leadrelay.ledger.overview import Period
from leadrelay.models import LeadState
from leadrelay.testing.seed import seed_leads
from tests.conftest import fresh_ledger


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_leads_per_day_and_the_latency_quantiles_are_what_was_written(
    request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> None:
    engine = create_engine(fresh_ledger(request, tmp_path, database))
    try:
        written = seed_leads(engine, 900, dead_every=9, duplicate_every=7, spacing=timedelta(days=12) / 900)
        period = Period.ending(utcnow().date(), 7)
        with make_session_factory(engine)() as session:
            per_day = overview.leads_per_day(session, period)
            latencies = overview.latencies(session, period)
            letters = overview.open_dead_letters(session)
    finally:
        engine.dispose()

    in_period = {key: n for key, n in written.leads().items() if period.first <= key[1] <= period.last}
    assert sum(in_period.values()) > 300  # most of the 900 fall in the last 7 of 12 days
    for entry in per_day:
        for day in period.days:
            received = sum(n for (c, d, _), n in in_period.items() if (c, d) == (entry.channel, day))
            assert entry.on(day) == received
            for state in overview.SHOWN_STATES:
                assert entry.on(day, state) == in_period.get((entry.channel, day, state), 0)
    assert sum(entry.total() for entry in per_day) == sum(in_period.values())
    assert letters == dict(written.open_letters()) and list(letters.values()) == sorted(
        letters.values(), reverse=True
    )

    # the delivery times of the leads received in the period, by the same interpolation as percentile_cont
    assert [lat.channel for lat in latencies] == sorted(
        {c for (c, _, s) in in_period if s == LeadState.delivered}
    )
    for lat in latencies:
        assert lat.count == sum(
            n for (c, _, s), n in in_period.items() if c == lat.channel and s == "delivered"
        )
        assert lat.p50 > 0 and lat.p95 >= lat.p50
    # the seed's own record of delivery times covers all 12 days; check one channel over all of them
    with_all = Period.ending(utcnow().date(), 13)
    engine = create_engine(str(engine.url))
    try:
        with make_session_factory(engine)() as session:
            everything = {lat.channel: lat for lat in overview.latencies(session, with_all)}
    finally:
        engine.dispose()
    for channel, seconds in written.seconds().items():
        cuts = statistics.quantiles(seconds, n=100, method="inclusive")
        assert everything[channel].count == len(seconds)
        assert everything[channel].p50 == pytest.approx(statistics.median(seconds), abs=2e-3)
        assert everything[channel].p95 == pytest.approx(cuts[94], abs=2e-3)
