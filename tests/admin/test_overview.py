"""The overview's numbers are the lengths of the lists they open, on Postgres."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leadrelay.api.app import create_app
from leadrelay.db import make_engine
from leadrelay.models import DeadLetter, Lead
from leadrelay.runtime import Runtime
from leadrelay.testing.seed import seed_leads
from tests.admin.test_admin_api import TOKEN, make_runtime
from tests.conftest import ThreadedServer

COUNTED = re.compile(r'<a href="([^"]+)"[^>]*data-count="(\d+)"')
LETTER_ROW = re.compile(r'<tr>\s*<td>(?:<input [^>]*>\s*)?<a href="/admin/dead-letters/\d+">')


@pytest.fixture
def logged_in(clean_db, sandbox) -> Iterator[tuple[httpx.Client, Runtime]]:
    rt = make_runtime(clean_db, sandbox)
    with (
        ThreadedServer(create_app(rt)) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        assert client.post("/admin/login", data={"token": TOKEN}).status_code == 303
        yield client, rt
    rt.close()


def count_of(session: Session, href: str) -> int:
    """What the list at ``href`` holds, counted in the ledger by its query parameters."""
    url = urlsplit(unescape(href))
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    if url.path == "/admin/dead-letters":
        return session.execute(
            select(func.count())
            .select_from(DeadLetter)
            .where(DeadLetter.status == params.get("status", "open"), DeadLetter.reason == params["reason"])
        ).scalar_one()
    assert url.path == "/admin/leads", href
    stmt = select(func.count()).select_from(Lead)
    if "channel" in params:
        stmt = stmt.where(Lead.channel == params["channel"])
    if "state" in params:
        stmt = stmt.where(Lead.state == params["state"])
    first = datetime.combine(date.fromisoformat(params["since"]), time(), tzinfo=UTC)
    last = datetime.combine(date.fromisoformat(params["until"]), time(), tzinfo=UTC)  # excluded
    return session.execute(stmt.where(Lead.received_at >= first, Lead.received_at < last)).scalar_one()


def test_every_number_on_the_overview_is_the_count_of_the_list_it_opens(logged_in) -> None:
    client, rt = logged_in
    engine = make_engine(rt.settings.database_url)
    try:
        spacing = timedelta(days=40) / 3_000
        written = seed_leads(engine, 3_000, dead_every=9, duplicate_every=7, spacing=spacing)
    finally:
        engine.dispose()
    for days in (7, 30, 90):
        page = client.get("/admin", params={"days": days})
        assert page.status_code == 200
        assert "<script" not in page.text and "script-src" not in page.headers["content-security-policy"]
        assert re.fullmatch(
            r'db;desc="ledger queries";dur=[\d.]+, render;dur=[\d.]+, total;dur=[\d.]+',
            page.headers["server-timing"],
        )
        marks = COUNTED.findall(page.text)
        assert len(marks) > 3 * days  # a column per day per channel, and the totals
        with rt.sessions() as session:
            for href, shown in marks:
                assert int(shown) == count_of(session, href), href
        if days == 90:  # every lead written is in the 90 days: all of them are on the page
            totals = [int(n) for href, n in marks if "state" not in href and "until=" in href]
            assert sum(totals) == 2 * written.count  # once per day, once in the totals row

    # the open dead letters by reason open the dead-letter list, which shows exactly that many
    page = client.get("/admin").text
    by_reason = [
        (href, int(n)) for href, n in COUNTED.findall(page) if href.startswith("/admin/dead-letters")
    ]
    assert {parse_qs(urlsplit(unescape(h)).query)["reason"][0]: n for h, n in by_reason} == dict(
        written.open_letters()
    )
    for href, n in by_reason:
        listed = client.get(unescape(href)).text
        assert len(LETTER_ROW.findall(listed)) == min(n, 200)
