"""The searchable lists on the page, the audit log, CSV exports and the CLI, over real HTTP on Postgres."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from leadrelay.db import transaction
from leadrelay.ledger import audit
from leadrelay.ledger.search import LEAD_COLUMNS
from leadrelay.runtime import Runtime
from leadrelay.settings import Settings
from leadrelay.testing.seed import seed_leads, seed_name
from tests.admin.test_admin_api import TOKEN
from tests.admin.test_admin_api import admin as admin
from tests.test_cli import cli

ROW_LINK = re.compile(r'<tr>\s*<td>(?:<input [^>]*>\s*)?<a href="/admin/(?:dead-letters|leads)/(\d+)">')
NEXT = re.compile(r'<a href="\?([^"]+)" rel="next"')


@pytest.fixture
def page(admin) -> Iterator[tuple[httpx.Client, httpx.Client, Runtime]]:
    api, rt = admin
    browser = httpx.Client(base_url=api.base_url)
    assert browser.post("/admin/login", data={"token": TOKEN}).status_code == 303
    yield browser, api, rt
    browser.close()


def walk(browser: httpx.Client, path: str) -> tuple[list[int], int, str]:
    """Every row id over every page, the number of pages, and the first page's HTML."""
    ids: list[int] = []
    pages = 0
    first = ""
    query = path.partition("?")[2]
    while True:
        response = browser.get(f"{path.partition('?')[0]}?{query}")
        assert response.status_code == 200, response.text
        first = first or response.text
        pages += 1
        ids += [int(n) for n in ROW_LINK.findall(response.text)]
        found = NEXT.search(response.text)
        if not found:
            return ids, pages, first
        query = found.group(1).replace("&amp;", "&")


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text)))


def test_the_page_pages_through_every_dead_letter_and_exports_them(page) -> None:
    browser, _, rt = page
    seeded = seed_leads(rt.engine, 2_600, dead_every=10)  # 260 dead letters: 3 pages of 100

    ids, pages, first = walk(browser, "/admin/dead-letters?status=open")
    assert pages == 3 and len(ids) == len(set(ids)) == seeded.dead == 260
    assert f'id="total">{seeded.dead} matches' in first
    with rt.engine.connect() as conn:
        assert ids == list(conn.execute(text("SELECT id FROM dead_letters ORDER BY id DESC")).scalars())

    exported = csv_rows(browser.get("/admin/dead-letters/export.csv?status=open&reason=validation"))
    listed, _, html = walk(browser, "/admin/dead-letters?status=open&reason=validation")
    assert [int(row["id"]) for row in exported] == listed and {r["reason"] for r in exported} == {
        "validation"
    }
    assert f'id="total">{len(listed)} matches' in html

    # a person's lead among 2,600, by e-mail, on the leads page
    found, _, html = walk(browser, f"/admin/leads?email={seeded.email(1_234)}")
    assert found == [seeded.first_id + 1_234] and seed_name(1_234) in html
    assert 'id="total">1 match<' in html

    # what cannot be read is named and ignored, never a 500
    odd = browser.get("/admin/leads", params={"opportunity_id": "abc", "state": "nope", "since": "soon"})
    assert odd.status_code == 200
    assert (
        "Ignored opportunity_id" in odd.text and "Ignored state" in odd.text and "Ignored since" in odd.text
    )


def test_csv_cells_are_never_formulas_and_only_admins_export(page) -> None:
    browser, api, rt = page
    seeded = seed_leads(rt.engine, 30, dead_every=0)
    formula = '=HYPERLINK("http://evil.example/","click")'
    with rt.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE leads SET lead = jsonb_set(lead, '{contact,full_name}', to_jsonb(CAST(:n AS text)))"
                " WHERE id = :id"
            ),
            {"n": formula, "id": seeded.first_id},
        )
    rows = csv_rows(browser.get("/admin/leads/export.csv"))
    assert len(rows) == 30 and list(rows[0]) == list(LEAD_COLUMNS)
    by_id = {int(row["id"]): row for row in rows}
    assert by_id[seeded.first_id]["name"] == "'" + formula
    assert by_id[seeded.first_id + 1]["phone"].startswith("'+44")  # a leading + is a formula too
    assert by_id[seeded.first_id + 1]["email"] == seeded.email(1)

    listed = api.get("/admin/api/leads", params={"channel": "hubblehq"})
    exported = csv_rows(api.get("/admin/api/leads/export.csv", params={"channel": "hubblehq"}))
    assert [int(r["id"]) for r in exported] == [r["id"] for r in listed.json()]
    assert int(listed.headers["x-total-count"]) == len(exported) == 10

    anonymous = httpx.get(f"{api.base_url}/admin/api/leads/export.csv")
    assert anonymous.status_code == 401
    for path in ("/admin/leads/export.csv", "/admin/dead-letters/export.csv", "/admin/audit/export.csv"):
        response = httpx.get(f"{api.base_url}{path}", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/admin/login", path


def test_the_audit_log_by_actor_action_lead_and_page(page) -> None:
    browser, api, rt = page
    seeded = seed_leads(rt.engine, 40, dead_every=4)  # 10 dead letters
    with rt.engine.connect() as conn:
        letters = list(conn.execute(text("SELECT id, lead_id FROM dead_letters ORDER BY id")).all())
    tokens = {"Jess": "jess-operator-token-0123456789", "Kim": "kim-operator-token-0123456789a"}
    rt.settings.admin_users = Settings(
        admin_users="\n".join(f"{who}:operator:{token}" for who, token in tokens.items())
    ).admin_users  # named admins: the audit's actor is whoever's token acted
    for (letter_id, _), who in zip(letters[:3], ("Jess", "Kim", "Jess"), strict=True):
        done = api.post(
            f"/admin/api/dead-letters/{letter_id}/discard",
            json={"why": "spam"},
            headers={"Authorization": f"Bearer {tokens[who]}"},
        )
        assert done.status_code == 204
    with transaction(rt.sessions) as session:
        for n in range(117):
            audit(session, actor="system", action="test.tick", target=f"tick:{n}", result="ok")
        audit(
            session,
            actor="system",
            action="dead_letter.supersede",
            target=f"lead:{letters[0][1]}",
            result="x",
        )

    jess = api.get("/admin/api/audit", params={"actor": "api:Jess"}).json()
    assert [e["target"] for e in jess] == [f"dead_letter:{letters[2][0]}", f"dead_letter:{letters[0][0]}"]
    assert {e["action"] for e in jess} == {"dead_letter.discard"} and jess[0]["detail"]["why"] == "spam"
    about = api.get("/admin/api/audit", params={"lead_id": letters[0][1]}).json()
    assert [e["action"] for e in about] == ["dead_letter.supersede", "dead_letter.discard"]
    discards = api.get("/admin/api/audit", params={"action": "dead_letter.d"})
    assert discards.headers["x-total-count"] == "3"

    ids: list[int] = []
    url: str | None = "/admin/api/audit?limit=50"
    while url:
        response = api.get(url)
        ids += [e["id"] for e in response.json()]
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
    assert len(ids) == len(set(ids)) == 121 and ids == sorted(ids, reverse=True)

    html = browser.get("/admin/audit", params={"actor": "api:Kim"}).text
    assert 'class="actor">api:Kim<' in html and "api:Jess" not in html
    assert f'href="/admin/dead-letters/{letters[1][0]}"' in html
    exported = csv_rows(browser.get("/admin/audit/export.csv", params={"actor": "api:"}))
    assert len(exported) == 3 and json.loads(exported[0]["detail"])["why"] == "spam"
    assert seeded.dead == 10


ENV = {**os.environ, "COLUMNS": "200"}


def run_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = cli(*args, "--json", env=ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_the_cli_finds_leads_and_dead_letters_with_the_same_filters(runtime: Runtime) -> None:
    seeded = seed_leads(runtime.engine, 120, dead_every=6)

    [one] = run_json("leads", "list", "--email", seeded.email(42).upper())["leads"]
    assert (one["id"], one["name"], one["opportunity_id"]) == (
        seeded.first_id + 42,
        seed_name(42),
        900_000_042,
    )
    first = run_json("leads", "list", "--limit", "30", "--channel", "workthere")
    second = run_json(
        "leads", "list", "--limit", "30", "--channel", "workthere", "--after", str(first["next_cursor"])
    )
    assert first["count"] == 40 and second["next_cursor"] is None
    ids = [r["id"] for r in first["leads"] + second["leads"]]
    assert len(ids) == len(set(ids)) == 40

    dead = run_json("dlq", "list", "--email", seeded.email(5))
    assert [r["lead_id"] for r in dead["dead_letters"]] == [seeded.first_id + 5] and dead["count"] == 1
    assert run_json("dlq", "list", "--state", "delivered")["count"] == 0
    assert run_json("dlq", "list", "--limit", "3")["count"] == seeded.dead == 20

    table = cli("leads", "list", "--name", seed_name(42).split()[0], "--limit", "5", env=ENV)
    assert table.returncode == 0, table.stderr
    assert "Next page: leadrelay leads list --after" in table.stdout
    shown = cli("leads", "show", str(seeded.first_id + 42), env=ENV)
    assert shown.returncode == 0, shown.stderr
    assert seed_name(42) in shown.stdout and "900000042" in shown.stdout
    detail = run_json("leads", "show", str(seeded.first_id + 5))
    assert detail["state"] == "dead" and detail["dead_letters"][0]["status"] == "open"
    assert cli("leads", "show", "999999", env=ENV).returncode == 1
