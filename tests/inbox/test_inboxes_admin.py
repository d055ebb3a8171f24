"""The admin's Inboxes page and ``GET /admin/api/inboxes``, over real HTTP, for inboxes
on a real Dovecot that are ok, failing, stale and never polled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from leadrelay.api.app import create_app
from leadrelay.runtime import Runtime
from leadrelay.testing.dovecot import Dovecot
from leadrelay.testing.mails import enquiries
from leadrelay.testing.processes import service_env
from tests.admin.test_admin_browser import ARGS, CHROMIUM, log_in
from tests.conftest import ThreadedServer, make_settings
from tests.inbox.conftest import Folders, inbox_routing
from tests.inbox.support import inbox, poll, routing_file
from tests.test_cli import cli

Site = tuple[str, Runtime]
TOKEN = "admin-token-for-tests-0123456789"


@pytest.fixture
def polled(dovecot: Dovecot, folders: Folders, clean_db: str) -> Iterator[tuple[dict[str, Any], Runtime]]:
    """Four inboxes, one in each state; their passes are in the ledger."""
    [mail] = enquiries(1)
    inboxes = {
        "brokers": inbox(dovecot, folders(mail.raw)),
        "lost": inbox(dovecot, "no-such-folder"),
        "locked": inbox(dovecot, folders(), password="wrong-password"),
        "fresh": inbox(dovecot, folders()),
    }
    rt = Runtime.load(make_settings(database_url=clean_db, admin_token=TOKEN), inbox_routing(inboxes))
    assert poll(rt, "brokers").ok
    assert poll(rt, "lost").kind == poll(rt, "lost").kind == "folder"  # two in a row: stale
    assert poll(rt, "locked").kind == "auth"  # one: failing
    yield inboxes, rt
    rt.close()


@pytest.fixture
def site(polled: tuple[dict[str, Any], Runtime], redis_broker: str) -> Iterator[Site]:
    _, rt = polled
    with ThreadedServer(create_app(rt)) as server:
        yield server.base_url, rt


def test_the_api_lists_every_inbox_with_its_state(site: Site) -> None:
    base, _ = site
    assert httpx.get(f"{base}/admin/api/inboxes").status_code == 401
    rows = httpx.get(f"{base}/admin/api/inboxes", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    by_name = {row["name"]: row for row in rows}
    assert {name: row["state"] for name, row in by_name.items()} == {
        "brokers": "ok",
        "fresh": "never polled",
        "locked": "failing",
        "lost": "stale",
    }
    brokers = by_name["brokers"]
    assert brokers["messages_imported"] == 1 and brokers["last_uid"] == 1
    assert brokers["uidvalidity"] > 0 and brokers["last_success_at"] and brokers["last_error"] is None
    lost = by_name["lost"]
    assert (lost["error_kind"], lost["consecutive_failures"]) == ("folder", 2)
    assert "'no-such-folder' does not exist" in lost["last_error"] and lost["last_success_at"] is None
    locked = by_name["locked"]
    assert locked["error_kind"] == "auth" and "wrong-password" not in locked["last_error"]
    assert by_name["fresh"]["last_poll_at"] is None


def test_the_page_needs_a_login_and_shows_the_same(site: Site) -> None:
    base, _ = site
    page = httpx.Client(base_url=base)
    assert page.get("/admin/inboxes").headers.get("location", "").endswith("/admin/login")
    page.post("/admin/login", data={"token": TOKEN, "name": "Jess"})
    html = page.get("/admin/inboxes").text
    assert 'href="/admin/inboxes"' in html  # in the navigation
    states = {"brokers": "ok", "lost": "stale", "locked": "failing", "fresh": "never-polled"}
    for name, state in states.items():
        assert f'class="inbox-{state}" data-inbox="{name}"' in html
    assert "does not exist on the server" in html and "wrong-password" not in html


@pytest.mark.browser
def test_an_admin_finds_a_stale_inbox_from_the_navigation(site: Site) -> None:
    base, _ = site
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        log_in(page, base)
        page.get_by_role("link", name="Inboxes").click()
        expect(page.get_by_role("heading", name="Inboxes")).to_be_visible()
        lost = page.locator('tr[data-inbox="lost"]')
        expect(lost.locator("td.state")).to_have_text("stale")
        expect(lost.locator("td.error")).to_contain_text("folder")
        expect(page.locator('tr[data-inbox="brokers"] td.state')).to_have_text("ok")
        browser.close()


def test_readyz_names_the_stale_inbox_to_admins_only(site: Site) -> None:
    base, _ = site
    anonymous = httpx.get(f"{base}/readyz")
    assert anonymous.status_code == 503 and "inbox" in anonymous.json()["problems"]
    assert "lost" not in anonymous.text and "no-such-folder" not in anonymous.text
    admin = httpx.get(f"{base}/readyz", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    [line] = [p for p in admin["problems"] if p.startswith("inbox:")]
    assert "inbox 'lost' has never been read (2 failed passes in a row" in line and "folder" in line
    assert admin["checks"]["inboxes"] == {
        "brokers": "ok",
        "fresh": "never polled",
        "locked": "failing",
        "lost": "stale",
    }
    schema = httpx.get(f"{base}/openapi.json").json()
    assert "/admin/api/inboxes" in schema["paths"]


def test_inbox_status_prints_each_state_and_exits_1_for_a_stale_inbox(
    polled: tuple[dict[str, Any], Runtime], clean_db: str, tmp_path: Path
) -> None:
    inboxes, _ = polled
    env = service_env(
        LEADRELAY_CONFIG=str(routing_file(tmp_path, inboxes)), LEADRELAY_DATABASE_URL=clean_db, COLUMNS="250"
    )
    table = cli("inbox", "status", env=env)
    assert table.returncode == 1, table.stderr
    rows = {line.split("│")[1].strip(): line for line in table.stdout.splitlines() if line.startswith("│ ")}
    assert "stale" in rows["lost"] and "folder: folder 'no-such-folder' does not exist" in rows["lost"]
    assert " ok " in rows["brokers"] and "never polled" in rows["fresh"] and "failing" in rows["locked"]
    as_json = cli("inbox", "status", "--json", env=env)
    assert as_json.returncode == 1
    states = {row["inbox"]: (row["state"], row["imported"]) for row in json.loads(as_json.stdout)["inboxes"]}
    assert states == {
        "brokers": ("ok", 1),
        "fresh": ("never polled", 0),
        "locked": ("failing", 0),
        "lost": ("stale", 0),
    }
