"""The admin looks like a product: accessible (axe-core), usable by keyboard alone, readable on
a phone and a laptop. The screenshots in docs/screenshots/ (shown in the README) are taken here."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from leadrelay.db import make_engine, transaction
from leadrelay.intake.store import record_inbound
from leadrelay.models import Lead
from leadrelay.runtime import Runtime
from leadrelay.testing.seed import seed_leads
from tests.admin import test_admin_browser as harness
from tests.admin.test_admin_api import TOKEN
from tests.admin.test_admin_browser import log_in, unroutable
from tests.dead_letters.test_replay import settle
from tests.helpers import canonical, ingest, wait_for

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZES = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
SERIOUS = ("serious", "critical")
browser = harness.browser  # the fixtures: headless Chromium, and a receiver with a worker
site = harness.site


def mail_lead(rt: Runtime) -> int:
    """A portal mail with a text part, an HTML part that tries to run script, and a PDF."""
    message = EmailMessage()
    message["From"] = "Hubble <enquiries@hubblehq.com>"
    message["To"] = "leads@foundry-workspace.example"
    message["Subject"] = "New viewing request (ref enq_LOOK0001)"
    message.set_content("Name: Amara Okafor\nEmail: amara.okafor@brightlane.io\nDesks: 12\n")
    message.add_alternative("<p>Name: <b>Amara Okafor</b></p><script>alert('mail')</script>", subtype="html")
    message.add_attachment(b"%PDF-1.7 floor plan", maintype="application", subtype="pdf", filename="plan.pdf")
    with transaction(rt.sessions) as session:
        return record_inbound(
            session,
            channel="hubblehq",
            source="email",
            intake_key=f"mail:{uuid.uuid4().hex}",
            body=message.as_bytes(),
            content_type="message/rfc822",
        ).lead_id


def settled(rt: Runtime, lead_id: int) -> str:
    """The lead's state once it stops moving: this site's worker thread may take it first."""
    settle(rt, lead_id)
    with rt.sessions() as session:
        wait_for(
            lambda: (
                session.execute(select(Lead.state).where(Lead.id == lead_id)).scalar_one()
                not in ("received", "normalised", "delivering")
            ),
            timeout=30,
            what=f"lead {lead_id} to settle",
        )
        return str(session.execute(select(Lead.state).where(Lead.id == lead_id)).scalar_one())


def a_ledger_to_look_at(rt: Runtime, url: str, sandbox: Any) -> dict[str, int]:
    """Seeded history for the charts, a routing dead letter, a delivered lead and its duplicate, a mail."""
    engine = make_engine(url)
    try:
        seed_leads(engine, 1_500, dead_every=9, duplicate_every=7, spacing=timedelta(days=30) / 1_500)
    finally:
        engine.dispose()
    dead = unroutable(url, sandbox, contact={"full_name": "Dana Whitfield", "email": "dana@example.com"})
    body = canonical(external_id="enq_STORY001")
    delivered = ingest(rt, body)
    assert settled(rt, delivered) == "delivered"
    duplicate = ingest(rt, body)
    assert settled(rt, duplicate) == "duplicate"
    mail = mail_lead(rt)
    settle(rt, mail)
    with rt.sessions() as session:
        from leadrelay.models import DeadLetter

        letter = session.query(DeadLetter).filter(DeadLetter.lead_id == dead).one().id
    return {"dead": dead, "letter": letter, "delivered": delivered, "duplicate": duplicate, "mail": mail}


def serious_violations(page: Page) -> list[dict[str, Any]]:
    results = Axe().run(page)
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


def test_every_admin_page_has_no_serious_accessibility_violation(
    browser: Browser, site, clean_db, sandbox
) -> None:
    base, rt = site
    ids = a_ledger_to_look_at(rt, clean_db, sandbox)
    page = browser.new_page()
    page.goto(f"{base}/admin/login")
    found = {"/admin/login": serious_violations(page)}
    log_in(page, base)
    paths = [
        "/admin",
        "/admin?days=90",
        "/admin/dead-letters",
        f"/admin/dead-letters/{ids['letter']}",
        "/admin/leads",
        f"/admin/leads/{ids['delivered']}",
        f"/admin/leads/{ids['duplicate']}",
        f"/admin/leads/{ids['mail']}",
        "/admin/introductions",
        "/admin/inboxes",
        "/admin/leads/999999999",  # the error page
    ]
    for path in paths:
        page.goto(base + path)
        found[path] = serious_violations(page)
    bad = {path: v for path, v in found.items() if v}
    assert bad == {}, json.dumps(bad, indent=1)

    # the mail's HTML part is shown as text, never run; its file is listed with its size
    page.goto(f"{base}/admin/leads/{ids['mail']}")
    expect(page.locator("#raw")).to_be_visible()
    expect(page.get_by_text("plan.pdf", exact=False).first).to_be_visible()
    assert page.locator("script").count() == 0
    expect(page.locator("pre.code").filter(has_text="<script>alert('mail')</script>")).to_have_count(1)
    page.close()


def _focus_is_visible(page: Page) -> bool:
    return bool(
        page.evaluate(
            """() => { const s = getComputedStyle(document.activeElement);
                return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; }"""
        )
    )


def tab_to(page: Page, name: str, limit: int = 80) -> None:
    """Press Tab until the focused element is named ``name``; every stop shows where the focus is."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        assert _focus_is_visible(page), page.evaluate("document.activeElement.outerHTML")
        said = page.evaluate(  # the label first: a checkbox's value is no name
            "() => { const e = document.activeElement;"
            " return (e.innerText || e.getAttribute('aria-label') || e.value || '').trim(); }"
        )
        if said == name:
            return
    raise AssertionError(f"{name!r} is not reachable with Tab on {page.url}")


def test_the_main_flow_by_keyboard_alone(browser: Browser, site, clean_db, sandbox) -> None:
    base, _ = site
    dead = unroutable(clean_db, sandbox)
    page = browser.new_page()
    page.goto(f"{base}/admin/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.locator(".skip").bounding_box()["y"] >= 0  # shown while it has the focus
    page.keyboard.press("Enter")  # to the content
    page.keyboard.press("Tab")
    page.keyboard.type("admin")  # the test token's owner
    page.keyboard.press("Tab")
    page.keyboard.type(TOKEN)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()

    tab_to(page, "Dead letters")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/admin/dead-letters")
    tab_to(page, "1")  # the first dead letter's number
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Dead letter 1")).to_be_visible()
    tab_to(page, "Replay")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"lead {dead} queued to be delivered")
    expect(page.locator("#state")).to_have_text("delivered", timeout=20_000)
    tab_to(page, "open in Nexudus")  # the opportunity's deep link
    page.close()


def test_screenshots_on_a_laptop_and_a_phone(browser: Browser, site, clean_db, sandbox) -> None:
    base, rt = site
    ids = a_ledger_to_look_at(rt, clean_db, sandbox)
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages = {
        "overview": "/admin",
        "dead-letter": f"/admin/dead-letters/{ids['letter']}",
        "lead": f"/admin/leads/{ids['delivered']}",
    }
    for size, viewport in SIZES.items():
        context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        page = context.new_page()
        log_in(page, base)
        for name, path in pages.items():
            page.goto(base + path)
            page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} scrolls sideways on a {size}"  # tables scroll in themselves
        context.close()
    made = sorted(p.name for p in SHOTS.glob("*.png"))
    assert made == sorted(f"{n}-{s}.png" for n in pages for s in SIZES), json.dumps(made)
