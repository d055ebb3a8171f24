"""Edit-and-replay on the page: a form over the canonical lead, checked by the canonical model.

Real HTTP to the admin page, the real ledger, the Nexudus sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from leadrelay import queries
from leadrelay.api.app import create_app
from leadrelay.api.lead_form import FIELDS, form_values, lead_from_form, problems_by_field
from leadrelay.models import DeadLetterStatus, LeadState
from leadrelay.runtime import Runtime
from tests.admin.pages import elements, logged_in
from tests.admin.test_admin_api import make_runtime
from tests.conftest import ThreadedServer
from tests.dead_letters.test_replay import open_letter, settle
from tests.helpers import canonical, dead_letters, ingest


@pytest.fixture
def page(clean_db, redis_broker, sandbox) -> Iterator[tuple[httpx.Client, str, Runtime]]:
    rt = make_runtime(clean_db, sandbox)
    with ThreadedServer(create_app(rt)) as server:
        client, csrf = logged_in(server.base_url)
        yield client, csrf, rt
        client.close()
    rt.close()


def phone_only(rt: Runtime) -> tuple[int, int]:
    """A lead Nexudus refuses (no e-mail): a validation dead letter. ``(lead, letter)``."""
    body = canonical(contact={"full_name": "Ada Caller", "phone": "+442079460000", "company": "Acme"})
    body["requirements"] = {"desks": {"min": 4, "max": 6}, "budget": {"amount": 2000, "currency": "GBP"}}
    lead_id = ingest(rt, body)
    assert settle(rt, lead_id) == "dead"
    return lead_id, open_letter(rt, lead_id)


def form(client: httpx.Client, letter_id: int) -> dict[str, str]:
    shown = elements(client.get(f"/admin/dead-letters/{letter_id}/edit").text)
    return {f.path: shown.by_id[f.id].get("value", shown.text.get(f.id, "")) for f in FIELDS}


def test_the_form_shows_the_lead_on_record(page) -> None:
    client, _, rt = page
    _, letter = phone_only(rt)
    assert f'href="/admin/dead-letters/{letter}/edit"' in client.get(f"/admin/dead-letters/{letter}").text
    values = form(client, letter)
    assert values["contact.full_name"] == "Ada Caller"
    assert values["contact.phone"] == "+442079460000"
    assert (values["requirements.desks.min"], values["requirements.desks.max"]) == ("4", "6")
    assert values["requirements.budget.max"] == "2000"
    assert values["contact.email"] == ""


def test_invalid_fields_are_refused_next_to_the_field_with_the_values_kept(page, sandbox) -> None:
    client, csrf, rt = page
    lead_id, letter = phone_only(rt)
    typed = {
        "csrf": csrf,
        "contact.full_name": "Ada Caller",
        "contact.email": "ada at example",
        "contact.phone": "+442079460000",
        "requirements.desks.min": "four",
        "requirements.budget.currency": "pounds",
        "requirements.start_date": "2026-13-40",
    }
    answer = client.post(f"/admin/dead-letters/{letter}/edit", data=typed)
    assert answer.status_code == 422
    shown = elements(answer.text)
    for path, words in {
        "contact.email": "not an e-mail address",
        "requirements.desks.min": "integer",
        "requirements.budget.currency": "pattern",
        "requirements.start_date": "date",
    }.items():
        field = next(f for f in FIELDS if f.path == path)
        attrs = shown.by_id[field.id]
        assert attrs.get("aria-invalid") == "true", path
        assert f"{field.id}-error" in attrs["aria-describedby"].split(), path
        assert words in shown.text[f"{field.id}-error"], (path, shown.text[f"{field.id}-error"])
        assert attrs["value"] == typed[path]  # as typed, not as on record
    assert "aria-invalid" not in shown.by_id["f-contact-full-name"]
    assert "not replayed" in shown.text["form-problems"]
    # nothing changed: the lead is still dead, its letter open, Nexudus untouched
    [letter_row] = dead_letters(rt, lead_id)
    assert letter_row.status == DeadLetterStatus.open
    with rt.sessions() as session:
        assert queries.lead_view(session, lead_id).lead.state == LeadState.dead
    assert sandbox.opportunities() == []


def test_a_lead_left_unreachable_is_refused_as_a_whole(page) -> None:
    client, csrf, rt = page
    _, letter = phone_only(rt)
    values = {**form(client, letter), "contact.phone": "", "contact.email": ""}
    answer = client.post(f"/admin/dead-letters/{letter}/edit", data={**values, "csrf": csrf})
    assert answer.status_code == 422
    assert (
        "neither an e-mail address nor a usable phone number" in elements(answer.text).text["form-problems"]
    )


def test_a_fixed_lead_is_delivered_once_and_audited_under_the_acting_user(page, sandbox) -> None:
    client, csrf, rt = page
    lead_id, letter = phone_only(rt)
    values = {**form(client, letter), "contact.email": "Ada@Example.COM", "message": "Fixed on the page"}
    answer = client.post(f"/admin/dead-letters/{letter}/edit", data={**values, "csrf": csrf})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"/admin/leads/{lead_id}?notice=")
    assert settle(rt, lead_id) == "delivered"
    [opportunity] = sandbox.opportunities()
    assert "Fixed on the page" in opportunity["Notes"]
    assert [c["Email"] for c in sandbox.coworkers() if "ada" in c["Email"]] == ["ada@example.com"]
    with rt.sessions() as session:
        lead = queries.lead_view(session, lead_id).lead
        assert lead.lead["requirements"]["desks"] == {"min": 4, "max": 6}  # what the form kept
        assert lead.lead["broker"]["contact"] == "Jo Baker"  # not on the form: kept as it was
        assert lead.lead["utm"]["campaign"] == "winter-2026"
        [entry] = queries.audit_entries(session)
    assert (entry.actor, entry.action, entry.result) == ("web:admin", "dead_letter.edit", "queued")

    # the same form sent again (a double click, the back button): refused, nothing more in Nexudus
    again = client.post(f"/admin/dead-letters/{letter}/edit", data={**values, "csrf": csrf})
    assert again.status_code == 303
    assert "already replayed" in httpx.URL(again.headers["location"]).params["notice"]
    assert len(sandbox.opportunities()) == 1


def test_a_forged_form_changes_nothing(page) -> None:
    client, _, rt = page
    lead_id, letter = phone_only(rt)
    values = {**form(client, letter), "contact.email": "ada@example.com"}
    assert (
        client.post(f"/admin/dead-letters/{letter}/edit", data={**values, "csrf": "forged"}).status_code
        == 403
    )
    assert dead_letters(rt, lead_id)[0].status == DeadLetterStatus.open


def test_the_form_lays_its_values_over_the_lead_on_record() -> None:
    on_record = canonical()
    values = form_values(on_record)
    edited = lead_from_form(on_record, {**values, "contact.email": "", "requirements.desks.min": "3"})
    assert edited["contact"]["email"] is None
    assert edited["requirements"]["desks"]["min"] == "3"  # the model reads it, and refuses junk
    assert edited["broker"] == on_record["broker"] and edited["utm"] == on_record["utm"]
    assert on_record["contact"]["email"]  # the lead on record is left as it was
    assert problems_by_field([("requirements.desks", "bad"), ("", "whole"), ("contact.email", "no")]) == {
        "requirements.desks.min": ["bad"],
        "": ["whole"],
        "contact.email": ["no"],
    }
