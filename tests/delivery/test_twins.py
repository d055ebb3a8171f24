"""Twins enrich: the e-mail of an enquiry already delivered by webhook brings what the webhook
lacked (UTM fields, phone, company) into the opportunity and the customer, never over what
staff edited since, exactly once."""

from __future__ import annotations

from typing import Any

import httpx

from leadrelay.db import transaction
from leadrelay.models import LeadState
from leadrelay.runtime import Runtime
from leadrelay.testing.partners import sample
from leadrelay.worker.normalise import normalise
from leadrelay.worker.pipeline import process
from tests.helpers import ingest, lead, make_due

OPPORTUNITIES = "/api/crm/crmopportunities"
COWORKERS = "/api/spaces/coworkers"
STAFF_NOTES = "Called Sam on Monday: wants a viewing next week. (staff)"


def twin_mail(*lines: str, message_id: str = "twin-1") -> bytes:
    """Hubble's notification of enq_3JD90PLA (the webhook's enquiry), with more lines in it."""
    raw = sample("hubblehq", "email-forwarded-enquiry.eml").read_bytes().decode()
    raw = raw.replace("<CAF0rwd.3JD90PLA@", f"<{message_id}.3JD90PLA@")
    extra = "".join(f"{line}\n" for line in lines)
    return raw.replace("Reference: enq_3JD90PLA", f"{extra}Reference: enq_3JD90PLA").encode()


def webhook(rt: Runtime) -> int:
    """Hubble's webhook of enq_3JD90PLA: a name and an e-mail, nothing more."""
    return ingest(rt, sample("hubblehq", "webhook-enquiry-minimal.json").read_bytes(), channel="hubblehq")


def run(rt: Runtime, lead_id: int) -> str:
    make_due(rt, lead_id)
    return process(rt, lead_id, owner="w")


def staff_edit(sandbox: Any, record: str, record_id: int, **fields: Any) -> None:
    """What an admin does in Nexudus: GET, change, PUT (the whole record)."""
    with httpx.Client(base_url=sandbox.base_url, auth=sandbox.auth) as api:
        got = api.get(f"{record}/{record_id}").json()
        assert api.put(record, json={**got, **fields}).status_code == 200


def puts(sandbox: Any) -> int:
    return sum(1 for r in sandbox.requests() if r["method"] == "PUT")


def test_the_mail_twin_brings_its_utm_fields_and_leaves_staff_notes_alone(runtime: Runtime, sandbox) -> None:
    hook = ingest(
        runtime, sample("hubblehq", "webhook-enquiry-minimal.json").read_bytes(), channel="hubblehq"
    )
    assert run(runtime, hook) == "delivered"
    [made] = sandbox.opportunities()
    assert made["UtmSource"] is None
    staff_edit(sandbox, OPPORTUNITIES, made["Id"], Notes=STAFF_NOTES)

    mail = twin_mail(
        "Phone: 07700 900777",
        "Company: O'Neill Studio",
        "UTM source: google",
        "UTM campaign: london-offices",
    )
    twin = ingest(runtime, mail, channel="hubblehq", source="email")
    assert run(runtime, twin) == "duplicate"

    [opportunity] = sandbox.opportunities()
    customer = next(c for c in sandbox.coworkers() if c["Id"] == made["CoworkerId"])
    assert (opportunity["UtmSource"], opportunity["UtmCampaign"]) == ("google", "london-offices")
    assert opportunity["Notes"] == STAFF_NOTES
    assert (opportunity["Name"], opportunity["Value"]) == (made["Name"], made["Value"])
    assert (customer["MobilePhone"], customer["CompanyName"]) == ("+447700900777", "O'Neill Studio")
    row = lead(runtime, twin)
    assert (row.state, row.duplicate_of, row.opportunity_id) == (LeadState.duplicate, hook, made["Id"])
    assert row.written is not None
    assert row.written["opportunity"] == {
        "Id": made["Id"],
        "UtmSource": "google",
        "UtmCampaign": "london-offices",
    }

    # the same mail again (another copy in the inbox): nothing more is written
    before = puts(sandbox)
    again = ingest(runtime, mail, channel="hubblehq", source="email")
    assert run(runtime, again) == "duplicate"
    assert puts(sandbox) == before


def test_a_field_staff_changed_since_is_kept_one_still_ours_is_updated(runtime: Runtime, sandbox) -> None:
    hook = ingest(
        runtime, sample("hubblehq", "webhook-enquiry-minimal.json").read_bytes(), channel="hubblehq"
    )
    assert run(runtime, hook) == "delivered"
    first = twin_mail("UTM source: google", "UTM campaign: london-offices")
    assert run(runtime, ingest(runtime, first, channel="hubblehq", source="email")) == "duplicate"
    [made] = sandbox.opportunities()
    staff_edit(sandbox, OPPORTUNITIES, made["Id"], UtmCampaign="spring-event")

    later = twin_mail("UTM source: bing", "UTM campaign: paris-offices", message_id="twin-2")
    assert run(runtime, ingest(runtime, later, channel="hubblehq", source="email")) == "duplicate"

    [opportunity] = sandbox.opportunities()
    assert opportunity["UtmSource"] == "bing"  # still what leadrelay wrote: the newer twin's value
    assert opportunity["UtmCampaign"] == "spring-event"  # staff's, since


def test_a_lost_answer_to_the_merge_writes_once(runtime: Runtime, sandbox) -> None:
    hook = ingest(
        runtime, sample("hubblehq", "webhook-enquiry-minimal.json").read_bytes(), channel="hubblehq"
    )
    assert run(runtime, hook) == "delivered"
    sandbox.add_fault("drop_after_commit", method="PUT", path_regex="crmopportunities$", times=1)
    twin = ingest(runtime, twin_mail("UTM source: google"), channel="hubblehq", source="email")

    outcomes = [run(runtime, twin)]
    while outcomes[-1] not in ("duplicate", "dead") and len(outcomes) < 6:
        outcomes.append(run(runtime, twin))

    assert outcomes[0] == "retry"
    assert outcomes[-1] == "duplicate"
    [opportunity] = sandbox.opportunities()
    assert opportunity["UtmSource"] == "google"
    assert puts(sandbox) == 1  # the one that landed unanswered; the retry found it there


def test_a_twin_that_adds_nothing_settles_as_a_duplicate_at_once(runtime: Runtime, sandbox) -> None:
    hook = ingest(
        runtime, sample("hubblehq", "webhook-enquiry-minimal.json").read_bytes(), channel="hubblehq"
    )
    assert run(runtime, hook) == "delivered"
    calls = len(sandbox.requests())

    twin = ingest(runtime, twin_mail(), channel="hubblehq", source="email")

    assert process(runtime, twin, owner="w") == "duplicate"
    assert len(sandbox.requests()) == calls


def test_a_twin_waits_for_the_delivery_of_its_enquiry(runtime: Runtime, sandbox) -> None:
    hook = ingest(
        runtime, sample("hubblehq", "webhook-enquiry-minimal.json").read_bytes(), channel="hubblehq"
    )
    with transaction(runtime.sessions) as session:  # read (the primary), not yet delivered
        assert normalise(session, hook, routing=runtime.routing).state == LeadState.normalised
    twin = ingest(runtime, twin_mail("UTM source: google"), channel="hubblehq", source="email")

    assert process(runtime, twin, owner="w") == "waiting"
    assert sandbox.opportunities() == []
    assert run(runtime, hook) == "delivered"
    assert run(runtime, twin) == "duplicate"
    [opportunity] = sandbox.opportunities()
    assert opportunity["UtmSource"] == "google"


def test_a_twin_older_than_its_enquiry_is_never_taken_for_its_first_introduction(
    runtime: Runtime, sandbox
) -> None:
    """The mail was recorded first but the webhook read first (two workers, a replay): the mail is
    the twin, and must not also count as the person's first introduction — each would wait for
    the other for ever (the chaos suite caught the pair)."""
    mail = ingest(runtime, twin_mail("UTM source: google"), channel="hubblehq", source="email")
    hook = webhook(runtime)
    with transaction(runtime.sessions) as session:
        assert normalise(session, hook, routing=runtime.routing).state == LeadState.normalised
    with transaction(runtime.sessions) as session:
        assert normalise(session, mail, routing=runtime.routing).duplicate_of == hook
    assert mail < hook

    assert run(runtime, hook) == "delivered"
    assert run(runtime, mail) == "duplicate"
    [opportunity] = sandbox.opportunities()
    assert opportunity["UtmSource"] == "google"
