"""The admin page in a real browser: headless Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from leadrelay.api.app import create_app
from leadrelay.models import Lead, LeadState
from leadrelay.runtime import Runtime
from leadrelay.worker.pipeline import process
from tests.admin.test_admin_api import TOKEN, make_runtime
from tests.conftest import ThreadedServer
from tests.dead_letters.test_replay import settle
from tests.helpers import canonical, ingest

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


class Worker:
    """Stands in for the Celery worker: delivers whatever the admin puts back in the queue."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.2):
            with self.rt.sessions() as session:
                due = (
                    session.execute(
                        select(Lead.id).where(Lead.state.in_([LeadState.received, LeadState.normalised]))
                    )
                    .scalars()
                    .all()
                )
            for lead_id in due:
                process(self.rt, lead_id, owner="browser-test-worker")


@pytest.fixture
def site(clean_db, redis_broker, sandbox) -> Iterator[tuple[str, Runtime]]:
    rt = make_runtime(clean_db, sandbox)
    worker = Worker(rt)
    with ThreadedServer(create_app(rt)) as server:
        worker.thread.start()
        yield server.base_url, rt
        worker.stop.set()
        worker.thread.join(timeout=10)
    rt.close()


def unroutable(url: str, sandbox, **lead: object) -> int:
    """A lead for a listing no location claims, with no default location: a routing dead letter."""
    rt = make_runtime(url, sandbox, defaults={"location": None})
    try:
        lead_id = ingest(rt, canonical(listing={"id": "annex-2"}, **lead))
        assert settle(rt, lead_id) == "dead"
        return lead_id
    finally:
        rt.close()


def log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/admin")
    expect(page).to_have_url(f"{base}/admin/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()


def test_log_in_filter_open_replay_and_see_it_delivered(browser: Browser, site, clean_db, sandbox) -> None:
    base, rt = site
    routed = unroutable(clean_db, sandbox)
    other = ingest(rt, canonical(external_id="junk-1", contact={"full_name": "nobody"}))
    page = browser.new_page()
    log_in(page, base)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dead letters").click()
    expect(page.locator("#dead-letters tbody tr")).to_have_count(2, timeout=10_000)

    page.get_by_label("Reason").select_option("routing")
    page.get_by_role("button", name="Find").click()
    rows = page.locator("#dead-letters tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("routing")
    rows.first.locator("td").first.get_by_role("link").click()

    expect(page.locator("#error")).to_contain_text("'annex-2'")
    expect(page.locator("#attempts")).to_have_count(0)  # it never reached Nexudus
    page.get_by_role("button", name="Replay").click()

    expect(page.get_by_role("status")).to_contain_text(f"lead {routed} queued to be delivered")
    expect(page.locator("#state")).to_have_text("delivered", timeout=20_000)  # the page refreshes itself
    expect(page.locator("#opportunity")).to_contain_text("Broker zap-000193")
    assert len(sandbox.opportunities()) == 1
    with rt.sessions() as session:
        assert session.get(Lead, other).state == LeadState.dead  # the filtered-out one was left alone
    page.close()


def test_a_lead_named_like_a_script_renders_as_text(browser: Browser, site, clean_db, sandbox) -> None:
    base, _ = site
    name = "<script>alert(1)</script>"
    lead_id = unroutable(clean_db, sandbox, contact={"full_name": name, "email": "x@example.com"})
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, base)
    page.goto(f"{base}/admin/leads/{lead_id}")
    expect(page.locator("#lead-name")).to_have_text(name)
    page.goto(f"{base}/admin/leads")
    expect(page.locator("#leads")).to_contain_text(name)
    assert page.locator("script").count() == 0
    assert dialogs == []
    page.close()


def test_a_wrong_token_is_refused_and_forms_need_their_csrf_token(
    browser: Browser, site, clean_db, sandbox
) -> None:
    base, _ = site
    page = browser.new_page()
    page.goto(f"{base}/admin/login")
    page.get_by_label("User name").fill("Mallory")
    page.get_by_label("Admin token").fill("guess")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("That user name and token do not belong to an admin.")
    page.close()

    letter_lead = unroutable(clean_db, sandbox)
    with httpx.Client(base_url=base) as client:
        login = client.post("/admin/login", data={"token": TOKEN})
        assert login.status_code == 303
        forged = client.post("/admin/dead-letters/1/replay", data={"csrf": "forged"})
        assert forged.status_code == 403
        page_html = client.get("/admin")
        assert page_html.headers["content-security-policy"].startswith("default-src 'none'")
        assert page_html.headers["x-frame-options"] == "DENY"
    with site[1].sessions() as session:
        assert session.get(Lead, letter_lead).state == LeadState.dead
