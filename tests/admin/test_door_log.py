"""The door log and "send a test lead", over real HTTP on the real Postgres."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from leadrelay import queries
from leadrelay.db import make_engine
from leadrelay.intake.door_log import REDACTED, DoorLog, DoorRejection, Rejection
from leadrelay.intake.store import SessionIntakeStore
from leadrelay.models import Lead
from tests.admin.test_identity import OPERATOR_TOKEN, Site, csrf_of, serving
from tests.intake.test_webhooks import SAMPLE, signed

MARKER = "BODY-MUST-NOT-BE-KEPT-5f2c"


def rows(door: Site, channel: str | None = None, *, at_least: int = 1) -> list[DoorRejection]:
    """The door log's rows (newest first), once at least ``at_least`` were written (in the background)."""
    deadline = time.monotonic() + 10
    while True:
        with door.rt.sessions() as session:
            query = select(DoorRejection).order_by(DoorRejection.id.desc())
            found = list(
                session.execute(query.where(DoorRejection.channel == channel) if channel else query).scalars()
            )
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture
def door(clean_db, redis_broker, sandbox) -> Iterator[Site]:
    with serving(clean_db, sandbox) as found:
        yield found


def test_a_bad_signature_is_in_the_door_log_with_its_reason_and_no_body(door: Site) -> None:
    body = json.dumps({**SAMPLE, "message": MARKER}).encode()
    headers = signed("whsec_d3JvbmctZG9vci1zZWNyZXQtLi4u", body) | {
        "authorization": "Bearer partner-api-key-9f8e7d",
        "cookie": "sid=partner-cookie-1234",
        "x-partner-secret": "hunter2-hunter2",
        "x-request-id": "req-123",
    }
    response = httpx.post(f"{door.base}/webhooks/canonical", content=body, headers=headers)
    assert response.status_code == 401

    [row] = rows(door, "canonical")
    assert (row.status, row.error, row.message) == (401, "invalid_signature", "no signature matches")
    assert row.source == "127.0.0.1"
    assert (row.body_sha256, row.body_bytes) == (hashlib.sha256(body).hexdigest(), len(body))
    kept = row.headers.splitlines()
    assert "x-request-id: req-123" in kept
    for name in ("webhook-signature", "authorization", "cookie", "x-partner-secret"):
        assert f"{name}: {REDACTED}" in kept
    stored = json.dumps([getattr(row, c.name) for c in DoorRejection.__table__.columns], default=str)
    for secret in (MARKER, headers["webhook-signature"], "partner-api-key", "partner-cookie", "hunter2"):
        assert secret not in stored

    # the same, on the admin API and page
    api = httpx.Client(base_url=door.base, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    [listed] = api.get("/admin/api/door", params={"channel": "canonical"}).json()
    assert (listed["error"], listed["body_bytes"]) == ("invalid_signature", len(body))
    assert MARKER not in json.dumps(listed)
    page = door.login(OPERATOR_TOKEN).get("/admin/door", params={"channel": "canonical"})
    assert page.status_code == 200
    assert "no signature matches" in page.text and hashlib.sha256(body).hexdigest()[:16] in page.text
    assert MARKER not in page.text


def test_the_door_log_keeps_the_newest_n_per_channel_and_unknown_channels_in_one_list(door: Site) -> None:
    door.rt.settings.door_log_size = 3
    for n in range(6):
        httpx.post(
            f"{door.base}/webhooks/canonical", content=f'{{"n": {n}}}', headers={"webhook-id": f"d{n}"}
        )
    for n in range(4):
        httpx.post(f"{door.base}/webhooks/no-such-{n}", content=b"{}")
    time.sleep(0.5)
    kept = rows(door, "canonical", at_least=3)
    assert len(kept) <= 4  # the trim sees the rows committed before it: at most one more, for a moment
    assert {r.status for r in kept} == {401}
    unknown = rows(door, "(unknown)", at_least=3)
    assert len(unknown) <= 4 and {r.status for r in unknown} == {404}
    with door.rt.sessions() as session:
        assert session.execute(select(func.count()).select_from(DoorRejection)).scalar_one() <= 8


def test_a_failure_to_record_is_logged_and_swallowed(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'no-tables.sqlite'}")  # no door_rejections table here
    log = DoorLog(SessionIntakeStore(sessionmaker(bind=engine)), keep=5)
    rejection = Rejection.of("canonical", 401, "invalid_signature", "x", source=None, headers=[], body=b"{}")

    async def record() -> None:
        log.record(rejection)
        await log.drain()

    asyncio.run(record())  # no exception: the door had answered already
    engine.dispose()


def test_send_a_test_lead_signs_the_sample_and_sends_it_through_the_door(door: Site) -> None:
    jess = door.login(OPERATOR_TOKEN)
    page = jess.get("/admin/door")
    assert 'action="/admin/door/canonical/test"' in page.text
    sent = jess.post("/admin/door/canonical/test", data={"csrf": csrf_of(jess)})
    assert sent.status_code == 303
    notice = httpx.URL(sent.headers["location"]).params["notice"]
    assert notice.startswith("Test lead for canonical: 202, accepted: stored as lead ")
    lead_id = int(notice.rsplit(" ", 1)[1].rstrip("."))
    with door.rt.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None and lead.channel == "canonical" and lead.source == "webhook"
        [entry] = queries.audit_entries(session)
    assert (entry.actor, entry.action, entry.target) == ("web:jess", "door.test_lead", "channel:canonical")
    assert entry.detail["lead_id"] == lead_id

    api = httpx.Client(base_url=door.base, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    again = api.post("/admin/api/door/canonical/test").json()
    assert again["status"] == 202 and again["lead_id"] != lead_id  # a fresh delivery id: a new intake
    assert api.post("/admin/api/door/nowhere/test").status_code == 404


def test_a_timestamp_of_non_ascii_digits_is_refused_and_logged_not_a_server_error(door: Site) -> None:
    body = json.dumps(SAMPLE).encode()
    headers = {
        **signed("whsec_d3JvbmctZG9vci1zZWNyZXQtLi4u", body),
        "webhook-timestamp": "²".encode("latin-1"),
    }
    response = httpx.post(f"{door.base}/webhooks/canonical", content=body, headers=headers)
    assert response.status_code == 401  # "²".isdigit() is true, int("²") fails: it was a 500
    [row] = rows(door, "canonical")
    assert row.message == "webhook-timestamp is not an integer (Unix seconds)"
