"""``/admin``: the overview, a page to look at — charts of the ledger for a period, each a link to its list.

Read with aggregate queries (leadrelay/ledger/overview.py); drawn as SVG on the server
(leadrelay/api/charts.py), so the page stays script-free under the admin's CSP. The
time the server spent is in the answer's ``Server-Timing`` header.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from leadrelay.api import charts
from leadrelay.api.admin_web import _page, _session
from leadrelay.api.charts import Mark
from leadrelay.db import utcnow
from leadrelay.inbox_health import intervals, read_inbox_health
from leadrelay.ledger import overview
from leadrelay.ledger.overview import SHOWN_STATES, ChannelDays, Period
from leadrelay.nexudus.auth_state import auth_states
from leadrelay.nexudus.budget import Spacing, db_clock
from leadrelay.runtime import Runtime

router = APIRouter(prefix="/admin", include_in_schema=False)
DEFAULT_DAYS = 30


def leads_href(*, channel: str | None = None, state: str | None = None, period: Period) -> str:
    """The leads list behind a number: its channel, state and received dates.

    The list's ``since`` and ``until`` are instants (``until`` excluded): the period's
    first day, and the day after its last.
    """
    query = {
        "channel": channel,
        "state": state,
        "since": period.first.isoformat(),
        "until": (period.last + timedelta(days=1)).isoformat(),
    }
    return "/admin/leads?" + urlencode({k: v for k, v in query.items() if v})


def dead_letters_href(reason: str) -> str:
    return "/admin/dead-letters?" + urlencode({"reason": reason, "status": "open"})


@dataclass(frozen=True, slots=True)
class ChannelChart:
    channel: str
    chart: Any  # Markup
    totals: list[Mark]  # received, then each shown state, for the whole period


def _channel_chart(entry: ChannelDays, period: Period) -> ChannelChart:
    stacks = []
    for day in period.days:
        on = Period(day, day)
        total = Mark(
            f"{day:%d %b} received",
            entry.on(day),
            leads_href(channel=entry.channel, period=on),
            "received",
            count=entry.on(day),
        )
        pieces = [
            Mark(
                f"{day:%d %b} {state}",
                entry.on(day, state),
                leads_href(channel=entry.channel, state=state, period=on),
                state,
                count=entry.on(day, state),
            )
            for state in SHOWN_STATES
        ]
        stacks.append((total, pieces))
    totals = [
        Mark(
            "received",
            entry.total(),
            leads_href(channel=entry.channel, period=period),
            "received",
            count=entry.total(),
        )
    ]
    totals += [
        Mark(
            state,
            entry.total(state),
            leads_href(channel=entry.channel, state=state, period=period),
            state,
            count=entry.total(state),
        )
        for state in SHOWN_STATES
    ]
    return ChannelChart(entry.channel, charts.columns(stacks), totals)


@dataclass(frozen=True, slots=True)
class Budget:
    account: str
    chart: Any
    lines: list[Mark]
    blocked: bool


def _budgets(session: Session, rt: Runtime) -> list[Budget]:
    now = db_clock(session)
    limits = {name: config.limits for name, config in rt.routing.accounts.items()}
    minutes = {name: math.floor(now / Spacing.of(lim).minute) for name, lim in limits.items()}
    blocked = overview.blocked_accounts(session, now)
    found = []
    for use in overview.usage(session, minutes):
        lim = limits[use.account]
        shares = [
            ("requests this hour", use.hour_requests, lim.requests_per_hour),
            ("requests today", use.day_requests, lim.requests_per_day),
            ("writes today", use.day_writes, lim.writes_per_day),
        ]
        marks = [
            Mark(label, 100 * used / cap, "", "budget", text=f"{used:,} of {cap:,} ({100 * used / cap:.1f}%)")
            for label, used, cap in shares
        ]
        found.append(Budget(use.account, charts.bars(marks, top=100), marks, use.account in blocked))
    return found


def load(rt: Runtime, period: Period) -> dict[str, Any]:
    with rt.sessions() as session:
        per_day = overview.leads_per_day(session, period)
        latencies = overview.latencies(session, period)
        letters = overview.open_dead_letters(session)
        inboxes = read_inbox_health(
            session, intervals(rt.routing), stale_intervals=rt.settings.inbox_stale_intervals
        )
        auth = auth_states(session, list(rt.routing.accounts))
        budgets = _budgets(session, rt)
    latency_marks = [
        Mark(
            f"{lat.channel} {name}",
            value,
            leads_href(channel=lat.channel, state="delivered", period=period),
            name,
            text=charts.duration(value),
        )
        for lat in latencies
        for name, value in (("p50", lat.p50), ("p95", lat.p95))
    ]
    letter_marks = [
        Mark(reason, n, dead_letters_href(reason), "dead", text=str(n), count=n)
        for reason, n in letters.items()
    ]
    return {
        "channels": [_channel_chart(entry, period) for entry in per_day],
        "latencies": [
            (lat, leads_href(channel=lat.channel, state="delivered", period=period)) for lat in latencies
        ],
        "latency_chart": charts.bars(latency_marks),
        "letters": letter_marks,
        "letters_chart": charts.bars(letter_marks),
        "inboxes": inboxes,
        "auth": auth,
        "budgets": budgets,
    }


@router.get("")
async def overview_page(request: Request, days: int = DEFAULT_DAYS) -> HTMLResponse:
    _session(request)
    chosen = days if days in overview.PERIODS else DEFAULT_DAYS
    period = Period.ending(utcnow().date(), chosen)
    started = time.perf_counter()
    data = await run_in_threadpool(load, request.app.state.runtime, period)
    queried = time.perf_counter()
    response = _page(
        request,
        "overview.html",
        **data,
        period=period,
        days=chosen,
        periods=overview.PERIODS,
        states=SHOWN_STATES,
        duration=charts.duration,
    )
    done = time.perf_counter()
    response.headers["Server-Timing"] = (
        f'db;desc="ledger queries";dur={(queried - started) * 1000:.1f}, '
        f"render;dur={(done - queried) * 1000:.1f}, total;dur={(done - started) * 1000:.1f}"
    )
    return response
