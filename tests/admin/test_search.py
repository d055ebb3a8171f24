"""Search and keyset paging (leadrelay.ledger.search) on the real Postgres, through the module and the API."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event, select, text

from leadrelay.db import make_engine, make_session_factory, transaction, utcnow
from leadrelay.ledger import audit, audit_search, search
from leadrelay.ledger.search import Criteria
from leadrelay.models import DeadLetter, Lead
from leadrelay.schema import upgrade
from leadrelay.testing.seed import FIRST_NAMES, LAST_NAMES, Seeded, seed_leads, seed_name, seed_phone
from tests.admin.test_admin_api import admin  # noqa: F401 - the fixture

BIG = 50_000


@pytest.fixture
def engine(clean_db: str) -> Iterator[Engine]:
    engine = make_engine(clean_db)
    yield engine
    engine.dispose()


def every_id(engine: Engine, *, letters: bool = False, **where: object) -> list[int]:
    table = DeadLetter if letters else Lead
    with make_session_factory(engine)() as session:
        stmt = select(table.id).filter_by(**where).order_by(table.id.desc())
        return list(session.execute(stmt).scalars())


def page_through(engine: Engine, c: Criteria, *, letters: bool, size: int) -> tuple[list[int], int, int]:
    """Every id, following the cursors; the number of pages; the count."""
    ids: list[int] = []
    pages = 0
    after = None
    with make_session_factory(engine)() as session:
        total = (search.count_letters if letters else search.count_leads)(session, c)
        while True:
            find = search.find_letters if letters else search.find_leads
            page = find(session, c, after=after, limit=size)
            pages += 1
            ids += [row.id for row in page.rows]
            assert len(page.rows) <= size
            if page.next_cursor is None:
                return ids, pages, total
            after = page.next_cursor


def test_keyset_pages_visit_every_lead_and_dead_letter_once(engine: Engine) -> None:
    seeded = seed_leads(engine, 1_234, dead_every=5)

    ids, pages, total = page_through(engine, Criteria(), letters=False, size=100)
    assert ids == every_id(engine)
    assert (pages, total, len(ids)) == (13, 1_234, 1_234)

    letters, pages, total = page_through(engine, Criteria(status="open"), letters=True, size=50)
    assert letters == every_id(engine, letters=True)
    assert total == len(letters) == seeded.dead == 1_234 // 5
    assert pages == -(-seeded.dead // 50)

    # a filtered walk: exactly the matching rows, newest first, no repeats
    channel_ids, _, total = page_through(engine, Criteria(channel="hubblehq"), letters=False, size=64)
    assert channel_ids == every_id(engine, channel="hubblehq") and total == len(channel_ids) > 64


def test_each_filter_finds_what_it_names(engine: Engine) -> None:
    seeded = seed_leads(engine, 600, dead_every=4, spacing=timedelta(minutes=1))
    i = 321
    lead_id = seeded.first_id + i
    cases = {
        "whole e-mail": Criteria(email=seeded.email(i).upper()),
        "phone as E.164": Criteria(phone=seed_phone(i)),
        "phone as typed nationally": Criteria(phone="020 7000 0321"),
        "portal reference": Criteria(reference=f"SEED-seed-{i}"),
        "opportunity id": Criteria(opportunity_id=900_000_000 + i),
        "coworker id": Criteria(coworker_id=900_000_000 + i),
    }
    with make_session_factory(engine)() as session:
        for name, c in cases.items():
            page = search.find_leads(session, c)
            assert [row.id for row in page.rows] == [lead_id], name
            assert search.count_leads(session, c) == 1, name
        [row] = search.find_leads(session, Criteria(email=seeded.email(i))).rows
        assert (row.name, row.email, row.phone) == (seed_name(i), seeded.email(i), seed_phone(i))

        # the start of an address: seed.32@, seed.320 … seed.329
        started = search.find_leads(session, Criteria(email="seed.32")).rows
        assert sorted(r.email for r in started) == sorted(
            seeded.email(n) for n in (32, *range(320, 330)) if n < 600
        )
        # a literal % or _ is text, not a wildcard
        assert search.find_leads(session, Criteria(email="seed.%")).rows == []

        # name: every word typed starts a word of the name, in any case and order
        first, last = FIRST_NAMES[1], LAST_NAMES[2]
        named = search.find_leads(session, Criteria(name=f"{last[:3].lower()} {first}"), limit=500).rows
        expected = [n for n in range(600) if seed_name(n) == f"{first} {last}"]
        assert sorted(r.id - seeded.first_id for r in named) == expected and expected

        dead = search.find_leads(session, Criteria(state="dead", channel="canonical"), limit=500).rows
        assert dead and all(r.state == "dead" and r.channel == "canonical" for r in dead)
        assert len(dead) == search.count_leads(session, Criteria(state="dead", channel="canonical"))

        # a time range: [since, until)
        newest = session.execute(select(Lead.received_at).where(Lead.id == seeded.last_id)).scalar_one()
        window = Criteria(since=newest - timedelta(minutes=9, seconds=30), until=newest)
        assert [r.id for r in search.find_leads(session, window).rows] == list(
            range(seeded.last_id - 1, seeded.last_id - 10, -1)
        )

        # dead letters by reason and by a person's e-mail
        by_reason = search.find_letters(session, Criteria(reason="validation", status="open"), limit=500)
        assert by_reason.rows and {r.reason for r in by_reason.rows} == {"validation"}
        assert len(by_reason.rows) == search.count_letters(session, Criteria(reason="validation"))
        [letter] = search.find_letters(session, Criteria(email=seeded.email(3))).rows
        assert (letter.lead_id, letter.email) == (seeded.first_id + 3, seeded.email(3))
        assert search.find_letters(session, Criteria(email=seeded.email(4))).rows == []  # delivered


def test_a_page_is_never_bigger_than_the_cap(engine: Engine) -> None:
    seed_leads(engine, search.MAX_PAGE + 20)
    with make_session_factory(engine)() as session:
        page = search.find_leads(session, Criteria(), limit=10 * search.MAX_PAGE)
    assert len(page.rows) == search.MAX_PAGE and page.next_cursor == page.rows[-1].id


def explained(engine: Engine, work: Callable[[], object]) -> list[tuple[str, float]]:
    """The plan text and the server's execution time of every statement ``work`` sends."""
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, many) -> None:  # type: ignore[no-untyped-def]
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    plans = []
    with engine.connect() as conn:
        for statement, parameters in sent:
            explain = "EXPLAIN (ANALYZE, FORMAT JSON) " + statement
            rows = conn.exec_driver_sql(explain, parameters).scalar_one()
            plans.append((repr(rows[0]["Plan"]), float(rows[0]["Execution Time"])))
    return plans


def test_finding_a_lead_by_e_mail_among_50000_uses_an_index(engine: Engine, record_property) -> None:
    started = time.perf_counter()
    seeded: Seeded = seed_leads(engine, BIG)
    record_property("seed_50000_seconds", round(time.perf_counter() - started, 2))
    target = 31_337
    factory = make_session_factory(engine)

    def find(c: Criteria) -> list[search.LeadRow]:
        with factory() as session:
            search.count_leads(session, c)
            return search.find_leads(session, c).rows

    timings = {}
    for label, c in {
        "email": Criteria(email=seeded.email(target)),
        "email_prefix": Criteria(email=f"seed.{target}"),
        "phone": Criteria(phone=seed_phone(target)),
        "reference": Criteria(reference=f"SEED-seed-{target}"),
        "opportunity": Criteria(opportunity_id=900_000_000 + target),
        "name": Criteria(name=seed_name(target)),
    }.items():
        found = find(c)
        if label == "name":  # a name is shared: every row found bears it
            assert found and {row.name for row in found} == {seed_name(target)}
        else:
            assert found[0].id == seeded.first_id + target, label
        plans = explained(engine, lambda c=c: find(c))
        assert plans, label
        for plan, _ms in plans:
            assert "Seq Scan" not in plan, (label, plan)
            assert "ix_search_leads" in plan or "ix_leads_" in plan, (label, plan)
        timings[label] = round(sum(ms for _, ms in plans), 3)
        record_property(f"server_ms_{label}", timings[label])
    print(f"\nserver time (page + count) among {BIG} leads, ms: {timings}")


def test_the_api_pages_with_headers_and_counts(admin) -> None:  # noqa: F811
    client, rt = admin
    seeded = seed_leads(rt.engine, 260, dead_every=2)
    seen: list[int] = []
    url: str | None = "/admin/api/dead-letters?limit=40&status=open"
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.text
        assert int(response.headers["x-total-count"]) == seeded.dead == 130
        seen += [row["id"] for row in response.json()]
        pages += 1
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
        if link:
            assert response.headers["x-next-cursor"] == str(seen[-1])
    assert pages == 4 and seen == every_id(rt.engine, letters=True) and len(set(seen)) == 130

    one = client.get("/admin/api/leads", params={"email": seeded.email(7)})
    assert [row["id"] for row in one.json()] == [seeded.first_id + 7]
    assert one.json()[0]["name"] == seed_name(7) and one.headers["x-total-count"] == "1"
    assert "link" not in one.headers
    assert client.get("/admin/api/leads", params={"limit": search.MAX_PAGE + 1}).status_code == 422
    assert client.get("/admin/api/leads", params={"email": "x" * 400}).status_code == 422
    assert client.get("/admin/api/leads", params={"opportunity_id": "abc"}).status_code == 422
    all_letters = client.get("/admin/api/dead-letters", params={"status": "all", "limit": 1})
    assert all_letters.headers["x-total-count"] == "130"


def test_counts_are_counted_not_loaded(engine: Engine) -> None:
    seed_leads(engine, 300)
    with make_session_factory(engine)() as session:
        statements = explained(engine, lambda: search.count_leads(session, Criteria(channel="canonical")))
    [(plan, _ms)] = statements
    assert "Aggregate" in plan


def test_seeding_is_spread_over_time_and_channels(engine: Engine) -> None:
    newest = utcnow()
    seeded = seed_leads(engine, 90, newest=newest, spacing=timedelta(hours=1), prefix="spread")
    with engine.connect() as conn:
        first, last, channels = conn.execute(
            text("SELECT min(received_at), max(received_at), count(DISTINCT channel) FROM leads")
        ).one()
    assert last - first == timedelta(hours=89) and channels == 3
    assert seeded.email(0) == "spread.0@example.test"


def test_the_same_filters_work_on_the_demo_s_sqlite(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        for i in range(5):
            contact = {"full_name": f"Ada Okafor{i}", "email": f"a{i}@x.com", "phone": "+442079460000"}
            lead = Lead(
                channel="canonical",
                source="webhook",
                intake_key=f"k{i}",
                raw_sha256="x",
                state="dead",
                lead={"contact": contact},
                external_id=f"R{i}",
            )
            session.add(lead)
            session.flush()
            session.add(DeadLetter(lead_id=lead.id, reason="validation", message="m"))
        audit(session, actor="web:Jess", action="dead_letter.discard", target="dead_letter:2", result="ok")
    with sessions() as session:
        [row] = search.find_leads(session, Criteria(email="A1@x.com")).rows
        assert (row.external_id, row.name) == ("R1", "Ada Okafor1")
        assert search.count_leads(session, Criteria(email="a")) == 5
        assert search.count_leads(session, Criteria(name="ada oka")) == 5
        page = search.find_letters(session, Criteria(phone="020 7946 0000", status="open"), limit=2)
        assert [r.id for r in page.rows] == [5, 4] and page.next_cursor == 4
        assert search.count_letters(session, Criteria(reference="R3")) == 1
        [entry] = audit_search.find_audit(session, audit_search.AuditCriteria(lead_id=2, actor="web:")).rows
        assert entry.action == "dead_letter.discard"
    engine.dispose()
