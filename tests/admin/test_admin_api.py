"""`/admin/api`: token-protected JSON over real HTTP, the same actions as the CLI."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from leadrelay import queries
from leadrelay.api.app import create_app
from leadrelay.runtime import Runtime
from tests.attribution.test_attribution import hubble, workthere
from tests.attribution.test_attribution import settle as settle_all
from tests.conftest import OPEN_BUDGET, ThreadedServer, make_settings, routing_with
from tests.dead_letters.test_replay import settle
from tests.helpers import canonical, dead_letters, ingest

TOKEN = "admin-token-for-tests-0123456789"


def make_runtime(url: str, sandbox, *, token: str | None = TOKEN, **routing: object) -> Runtime:
    settings = make_settings(
        database_url=url,
        admin_token=token,
        nexudus_base_url=sandbox.base_url,
        nexudus_username="sandbox@leadrelay.local",
        nexudus_password="sandbox",
    )
    return Runtime.load(settings, routing_with(accounts=OPEN_BUDGET, **routing))


@pytest.fixture
def admin(clean_db, redis_broker, sandbox) -> Iterator[tuple[httpx.Client, Runtime]]:
    rt = make_runtime(clean_db, sandbox)
    with ThreadedServer(create_app(rt)) as server:
        client = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {TOKEN}"})
        yield client, rt
        client.close()
    rt.close()


def test_without_the_token_the_api_answers_401(admin) -> None:
    client, _ = admin
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic eDp5"},
    ):
        response = httpx.get(f"{client.base_url}/admin/api/dead-letters", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_with_no_token_configured_the_admin_is_disabled(clean_db, sandbox) -> None:
    rt = make_runtime(clean_db, sandbox, token=None)
    try:
        with ThreadedServer(create_app(rt)) as server:
            response = httpx.get(f"{server.base_url}/admin/api/leads", headers={"Authorization": "Bearer x"})
            assert response.status_code == 403
            assert "LEADRELAY_ADMIN_TOKEN" in response.json()["detail"]
    finally:
        rt.close()


def test_list_show_replay_and_replay_again(admin, sandbox) -> None:
    client, rt = admin
    lead_id = ingest(rt, canonical(contact={"full_name": "Caller", "phone": "+442079460000"}))
    assert settle(rt, lead_id) == "dead"

    [row] = client.get("/admin/api/dead-letters").json()
    assert (row["lead_id"], row["reason"], row["channel"]) == (lead_id, "validation", "canonical")
    detail = client.get(f"/admin/api/dead-letters/{row['id']}").json()
    assert detail["detail"]["errors"][0]["PropertyName"] == "Email"
    assert [a["call"] for a in detail["delivery_attempts"]] == ["coworker.create"]
    assert '"zap-000193"' in detail["raw"]
    assert detail["canonical_lead"]["contact"]["phone"] == "+442079460000"

    edited = {**canonical(), "contact": {"full_name": "Caller", "email": "caller@example.com"}}
    # a typed name is not an identity: the actor is the token's user
    result = client.put(
        f"/admin/api/dead-letters/{row['id']}/lead", json=edited, headers={"X-Leadrelay-Actor": "Mallory"}
    )
    assert result.status_code == 200, result.text
    assert result.json()["outcome"] == "queued"
    assert settle(rt, lead_id) == "delivered"

    again = client.post(f"/admin/api/dead-letters/{row['id']}/replay")
    assert again.status_code == 409
    assert "already replayed" in again.json()["detail"]
    lead = client.get(f"/admin/api/leads/{lead_id}").json()
    assert lead["state"] == "delivered"
    assert lead["opportunity_id"] == sandbox.opportunities()[0]["Id"]
    assert len(sandbox.opportunities()) == 1
    with rt.sessions() as session:
        [entry] = queries.audit_entries(session)
    assert (entry.actor, entry.action) == ("api:admin", "dead_letter.edit")


def test_bulk_replay_dry_run_and_discard(admin) -> None:
    client, rt = admin
    ids = [ingest(rt, canonical(external_id=f"x{n}", contact={"full_name": "nobody"})) for n in range(3)]
    for lead_id in ids:
        assert settle(rt, lead_id) == "dead"
    preview = client.post(
        "/admin/api/dead-letters/replay", json={"reason": "parse_error", "dry_run": True}
    ).json()
    assert preview["matched"] == 3
    assert {r["outcome"] for r in preview["results"]} == {"would_replay"}

    first = client.get("/admin/api/dead-letters").json()[-1]
    assert client.post(f"/admin/api/dead-letters/{first['id']}/discard", json={"why": ""}).status_code == 422
    assert (
        client.post(f"/admin/api/dead-letters/{first['id']}/discard", json={"why": "spam"}).status_code == 204
    )
    done = client.post("/admin/api/dead-letters/replay", json={"reason": "parse_error"}).json()
    assert done["matched"] == 2
    assert {r["outcome"] for r in done["results"]} == {"queued"}
    assert len([d for d in dead_letters(rt) if d.status == "open"]) == 0


def test_unknown_ids_are_404(admin) -> None:
    client, _ = admin
    assert client.get("/admin/api/dead-letters/999").status_code == 404
    assert client.post("/admin/api/dead-letters/999/replay").status_code == 404
    assert client.get("/admin/api/leads/999").status_code == 404


def test_the_admin_api_is_in_the_openapi_with_bearer_auth(admin) -> None:
    client, _ = admin
    schema = client.get("/openapi.json").json()
    assert "/admin/api/dead-letters/{letter_id}/replay" in schema["paths"]
    assert any(s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values())


def test_competing_introductions_are_listed_with_their_deadline(admin) -> None:
    client, rt = admin
    first = ingest(rt, hubble(), channel="hubblehq")
    later = ingest(rt, workthere(), channel="workthere")
    assert (settle_all(rt, first), settle_all(rt, later)) == ("delivered", "attached")
    [row] = client.get("/admin/api/introductions").json()
    assert (row["first"]["lead_id"], row["later"]["lead_id"], row["state"]) == (first, later, "attached")
    assert (row["later"]["reference"], row["first"]["reference"]) == ("WT-2026-004417", "enq_8F2KQ7XW")
    assert 47 * 3600 < row["seconds_left"] <= 48 * 3600
    page = httpx.Client(base_url=client.base_url)
    page.post("/admin/login", data={"token": TOKEN})
    html = page.get("/admin/introductions").text
    assert "Workthere WT-2026-004417" in html and "HubbleHq enq_8F2KQ7XW" in html
