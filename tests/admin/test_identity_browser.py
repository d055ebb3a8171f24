"""Named admins in a real browser (headless Chromium): a viewer's replay is refused, an operator's audited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from leadrelay import queries
from leadrelay.models import DeadLetterStatus
from tests.admin.test_admin_browser import browser  # noqa: F401  (the module's Chromium)
from tests.admin.test_identity import OPERATOR_TOKEN, VIEWER_TOKEN, Site, a_dead_letter, serving
from tests.helpers import dead_letters

pytestmark = pytest.mark.browser


@pytest.fixture
def site(clean_db, redis_broker, sandbox) -> Iterator[Site]:
    with serving(clean_db, sandbox) as found:
        yield found


def log_in(page: Page, site: Site, user: str, token: str) -> None:
    page.goto(f"{site.base}/admin")
    expect(page).to_have_url(f"{site.base}/admin/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".who")).to_contain_text(f"web:{user}")


def test_a_viewers_replay_is_refused_and_an_operators_is_audited_under_their_name(
    browser: Browser,  # noqa: F811
    site: Site,
) -> None:
    letter_id, lead_id = a_dead_letter(site.rt)
    viewer = browser.new_page()
    log_in(viewer, site, "vic", VIEWER_TOKEN)
    expect(viewer.locator(".who")).to_contain_text("viewer")
    viewer.goto(f"{site.base}/admin/dead-letters/{letter_id}")
    viewer.get_by_role("button", name="Replay").click()
    expect(viewer.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(viewer.locator("main")).to_contain_text("only an operator may replay")
    assert [d.status for d in dead_letters(site.rt, lead_id)] == [DeadLetterStatus.open]
    viewer.goto(f"{site.base}/admin/door")
    expect(viewer.locator("#channels")).to_contain_text("operators only")
    viewer.close()

    operator = browser.new_page()
    log_in(operator, site, "jess", OPERATOR_TOKEN)
    operator.goto(f"{site.base}/admin/door")
    operator.get_by_role("button", name="Send a test lead to canonical").click()
    expect(operator.get_by_role("status")).to_contain_text("Test lead for canonical: 202, accepted")
    operator.get_by_role("button", name="Log out").click()
    expect(operator).to_have_url(f"{site.base}/admin/login")
    operator.goto(f"{site.base}/admin/door")
    expect(operator).to_have_url(f"{site.base}/admin/login")  # the session ended on the server
    operator.close()
    with site.rt.sessions() as session:
        entries = [(e.actor, e.action) for e in queries.audit_entries(session)]
    assert entries == [("web:jess", "door.test_lead")]
