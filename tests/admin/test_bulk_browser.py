"""Bulk replay and the audit log in a real browser (headless Chromium), by a named operator.

500 dead letters replayed from the page: all matching, previewed, confirmed, the job page
watched as it advances (a thread runs the job's chunks as the worker's task does; the
harness's worker delivers what they queue), and each lead delivered once in the sandbox.
Then every kind of action taken on the page is on /admin/audit under the operator's name.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select

from leadrelay.api.app import create_app
from leadrelay.models import BulkJob, Lead, LeadState
from leadrelay.runtime import Runtime
from leadrelay.settings import Settings
from leadrelay.worker import bulk_jobs
from tests.admin.test_admin_api import make_runtime
from tests.admin.test_admin_browser import Worker, browser  # noqa: F401  (the module's Chromium)
from tests.admin.test_bulk_jobs import unroutable
from tests.admin.test_identity import OPERATOR_TOKEN
from tests.conftest import ThreadedServer
from tests.dead_letters.test_replay import open_letter, settle
from tests.helpers import canonical, ingest, wait_for

pytestmark = pytest.mark.browser
BULK = 500


def as_jess(page: Page, base: str, rt: Runtime) -> None:
    """Log in as the named operator ``jess`` (her own token, not the shared one)."""
    rt.settings.admin_users = Settings(admin_users=f"jess:operator:{OPERATOR_TOKEN}").admin_users
    page.goto(f"{base}/admin/login")
    page.get_by_label("User name").fill("jess")
    page.get_by_label("Admin token").fill(OPERATOR_TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".who")).to_contain_text("web:jess")


@pytest.fixture
def site(clean_db, redis_broker, sandbox) -> Iterator[tuple[str, Runtime, Worker]]:
    """The receiver, and a worker the test starts once its dead letters are made (else it would
    deliver them while they are being made: this receiver has a default location)."""
    rt = make_runtime(clean_db, sandbox)
    worker = Worker(rt)
    with ThreadedServer(create_app(rt)) as server:
        yield server.base_url, rt, worker
        worker.stop.set()
        if worker.thread.is_alive():
            worker.thread.join(timeout=10)
    rt.close()


@pytest.fixture(autouse=True)
def chunks(site) -> Iterator[list[int]]:
    """The worker's bulk task: every unfinished job, 25 items a chunk, a pause between chunks."""
    _, rt, _ = site
    stop, jobs_seen = threading.Event(), []

    def run() -> None:
        while not stop.wait(0.3):
            with rt.sessions() as session:
                open_jobs = (
                    session.execute(select(BulkJob.id).where(BulkJob.status != "done")).scalars().all()
                )
            for job_id in open_jobs:
                jobs_seen.append(job_id)
                bulk_jobs.run_chunk(rt, job_id, publish=lambda ids: len(ids), limit=25)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield jobs_seen
    stop.set()
    thread.join(timeout=30)


@pytest.mark.timeout(1_200)  # 500 leads made, replayed and delivered one by one: minutes on a busy machine
def test_bulk_replay_500_from_the_page_with_progress_each_delivered_once(
    browser: Browser,  # noqa: F811
    site,
    clean_db,
    sandbox,
) -> None:
    base, rt, worker = site
    started = time.monotonic()
    letters = unroutable(clean_db, sandbox, BULK)
    worker.thread.start()
    seeded_in = time.monotonic() - started
    page = browser.new_page()
    as_jess(page, base, rt)
    page.goto(f"{base}/admin/dead-letters")
    expect(page.locator("#total")).to_have_text(f"{BULK} matches")
    page.get_by_label(f"all {BULK} open matching the filter").check()
    page.locator("#bulk-preview").click()
    expect(page.locator("#bulk-summary")).to_contain_text(f"{BULK} would be replayed and 0 skipped")
    assert len(sandbox.opportunities()) == 0  # a preview changes nothing
    page.get_by_role("button", name=f"Replay {BULK} dead letters").click()

    expect(page).to_have_url(re.compile(r"/admin/bulk-jobs/\d+"))
    job_started = time.monotonic()
    seen: list[int] = []
    while True:  # the page refreshes itself (a meta refresh, no script) until the job is done
        seen.append(int(page.locator("#job-done").inner_text()))
        if page.locator("#job-status").inner_text() == "done":
            break
        assert time.monotonic() - job_started < 600, f"the job stalled at {seen[-1]}"
        page.wait_for_timeout(1_000)
    job_took = time.monotonic() - job_started
    assert seen == sorted(seen) and seen[-1] == BULK
    assert any(0 < n < BULK for n in seen), seen  # progress was shown on the way, not only the end
    expect(page.locator("#job-progress")).to_have_attribute("value", str(BULK))

    wait_for(lambda: len(sandbox.opportunities()) >= BULK, timeout=600, interval=1, what="500 deliveries")
    delivered_in = time.monotonic() - job_started
    names = [o["Name"] for o in sandbox.opportunities()]
    assert len(names) == len(set(names)) == BULK  # each once
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).where(Lead.state == LeadState.delivered)) == BULK
    page.goto(f"{base}/admin/audit?actor=web:jess&action=bulk_job")
    expect(page.locator("#audit tbody tr")).to_have_count(1)
    expect(page.locator("#audit tbody tr").first).to_contain_text("bulk_job.replay")
    print(
        f"\nbulk replay of {len(letters)} on the page: dead letters made in {seeded_in:.0f} s, job done in "
        f"{job_took:.0f} s, all delivered {delivered_in:.0f} s after confirming; progress seen {seen}"
    )
    page.close()


def test_each_action_on_the_page_is_in_the_audit_log_under_the_acting_user(
    browser: Browser,  # noqa: F811
    clean_db: str,
    sandbox,
    site: tuple[str, Runtime, Worker],
) -> None:
    base, rt, worker = site
    to_replay, to_discard, *bulk = unroutable(clean_db, sandbox, 4)
    no_email = canonical(external_id="audit-edit", contact={"full_name": "Ada", "phone": "+442079460000"})
    phone_only = ingest(rt, no_email)
    assert settle(rt, phone_only) == "dead"
    to_edit = open_letter(rt, phone_only)
    worker.thread.start()
    page = browser.new_page()
    as_jess(page, base, rt)

    page.goto(f"{base}/admin/dead-letters/{to_replay}")
    page.get_by_role("button", name="Replay", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("queued to be delivered")

    page.goto(f"{base}/admin/dead-letters/{to_discard}")
    page.get_by_placeholder("why discard?").fill("a test lead")
    page.get_by_role("button", name="Discard", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Discarded")

    page.goto(f"{base}/admin/dead-letters/{to_edit}")
    page.get_by_role("link", name="Edit and replay").click()
    page.get_by_label("E-mail").fill("ada@example.com")
    page.get_by_role("button", name="Save and replay").click()
    expect(page.get_by_role("status")).to_contain_text("edited and queued to be delivered")

    page.goto(f"{base}/admin/dead-letters")
    for letter in bulk:
        page.get_by_label(f"Select dead letter {letter}").check()
    page.locator("#bulk-preview").click()
    page.get_by_role("button", name=f"Replay {len(bulk)} dead letters").click()
    expect(page.locator("#job-status")).to_have_text("done", timeout=60_000)

    page.goto(f"{base}/admin/audit")
    page.get_by_label("Actor").fill("web:jess")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#audit tbody tr")
    shown = {
        (rows.nth(i).locator("td").nth(3).inner_text(), rows.nth(i).locator("td").nth(4).inner_text())
        for i in range(rows.count())
    }
    assert {
        ("dead_letter.replay", f"dead_letter:{to_replay}"),
        ("dead_letter.discard", f"dead_letter:{to_discard}"),
        ("dead_letter.edit", f"dead_letter:{to_edit}"),
        *(("dead_letter.replay", f"dead_letter:{letter}") for letter in bulk),
    } <= shown
    assert any(action == "bulk_job.replay" for action, _ in shown)
    assert {rows.nth(i).locator("td.actor").inner_text() for i in range(rows.count())} == {"web:jess"}
    wait_for(lambda: len(sandbox.opportunities()) == 4, timeout=120, interval=0.5, what="4 deliveries")
    page.close()
