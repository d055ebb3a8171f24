"""The overview on a ledger of 50,000 leads: its numbers still match its lists, and its server
time is recorded (bench/results/admin-overview.json), never asserted: a timing is a measurement."""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from datetime import date, timedelta
from html import unescape
from pathlib import Path

from sqlalchemy import text

from leadrelay.db import make_engine, utcnow
from leadrelay.testing.seed import seed_leads
from tests.admin.test_overview import COUNTED, count_of, logged_in  # noqa: F401  (fixture)

LEADS = 50_000
RECORD = Path(__file__).resolve().parents[2] / "bench" / "results" / "admin-overview.json"
TOTAL = re.compile(r"total;dur=([\d.]+)")
DB = re.compile(r"db;[^,]*dur=([\d.]+)")


def test_the_overview_of_50000_leads_matches_its_lists_and_its_time_is_recorded(logged_in) -> None:  # noqa: F811
    client, rt = logged_in
    engine = make_engine(rt.settings.database_url)
    try:
        spacing = timedelta(days=89) / LEADS  # all within the 90 whole days the page shows
        seeded = seed_leads(engine, LEADS, dead_every=40, duplicate_every=7, spacing=spacing)
    finally:
        engine.dispose()
    with rt.sessions() as session:
        session.execute(text("ANALYZE"))
    timings: dict[str, dict[str, float]] = {}
    for days in (7, 30, 90):
        client.get("/admin", params={"days": days})  # warm
        totals, queries = [], []
        for _ in range(5):
            page = client.get("/admin", params={"days": days})
            assert page.status_code == 200
            totals.append(float(TOTAL.search(page.headers["server-timing"])[1]))
            queries.append(float(DB.search(page.headers["server-timing"])[1]))
        timings[f"{days}d"] = {
            "median_ms": statistics.median(totals),
            "db_median_ms": statistics.median(queries),
        }
        if days == 90:  # every seeded lead is on this page: each period total is its list's length
            marks = [(h, int(n)) for h, n in COUNTED.findall(page.text) if "dead-letters" in h or _whole(h)]
            assert sum(n for h, n in marks if "state" not in h and "leads" in h) == LEADS
            with rt.sessions() as session:
                for href, shown in marks:
                    assert shown == count_of(session, href), href
    searches = []  # one e-mail among 50,000 on the leads page: the round trip over loopback HTTP
    for n in range(20):
        started = time.perf_counter()
        found = client.get("/admin/leads", params={"email": seeded.email(1_000 + 37 * n)})
        searches.append((time.perf_counter() - started) * 1000)
        assert found.status_code == 200 and 'id="total">1 match<' in found.text
    timings["email_search"] = {
        "median_ms": round(statistics.median(searches), 1),
        "max_ms": round(max(searches), 1),
    }
    RECORD.write_text(
        json.dumps(
            {
                "leads": LEADS,
                "at": utcnow().isoformat(timespec="minutes"),
                "load_average_1m": round(os.getloadavg()[0], 1),  # a busy machine stretches every number
                "cpus": os.cpu_count(),
                "server_time": timings,  # email_search: the whole round trip, server time included
            },
            indent=1,
        )
        + "\n"
    )
    print(f"overview with {LEADS} leads, server time: {timings}")


def _whole(href: str) -> bool:
    """A period total's link (more than one day), not one day's."""
    found = dict(re.findall(r"(since|until)=([\d-]+)", unescape(href)))
    if len(found) < 2:
        return False
    return (date.fromisoformat(found["until"]) - date.fromisoformat(found["since"])).days > 1
