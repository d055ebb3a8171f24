"""Edit-and-replay on the page in a real browser: refused next to the field, then delivered once."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.admin.test_admin_browser import browser, log_in, site  # noqa: F401  (fixtures)
from tests.dead_letters.test_replay import open_letter, settle
from tests.helpers import canonical, ingest

pytestmark = pytest.mark.browser


def test_edit_a_dead_letters_e_mail_on_the_page_and_see_it_delivered(browser: Browser, site, sandbox) -> None:  # noqa: F811
    base, rt = site
    lead_id = ingest(rt, canonical(contact={"full_name": "Ada Caller", "phone": "+442079460000"}))
    assert settle(rt, lead_id) == "dead"  # Nexudus wants an e-mail address
    letter = open_letter(rt, lead_id)
    page = browser.new_page()
    log_in(page, base)
    page.goto(f"{base}/admin/dead-letters/{letter}")
    page.get_by_role("link", name="Edit and replay").click()

    email = page.get_by_label("E-mail")
    expect(email).to_have_value("")
    email.fill("ada at example")
    page.get_by_role("button", name="Save and replay").click()
    expect(page.get_by_role("alert")).to_contain_text("E-mail: is not an e-mail address")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description("is not an e-mail address")
    expect(email).to_have_value("ada at example")  # as typed
    expect(page.get_by_label("Phone")).to_have_value("+442079460000")
    assert page.locator("script").count() == 0

    email.fill("ada@example.com")
    page.get_by_role("button", name="Save and replay").click()
    expect(page.get_by_role("status")).to_contain_text(f"lead {lead_id} edited and queued to be delivered")
    expect(page.locator("#state")).to_have_text("delivered", timeout=20_000)  # the lead page refreshes itself
    assert len(sandbox.opportunities()) == 1
    page.close()
