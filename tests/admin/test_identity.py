"""Named admins over real HTTP on the real Postgres: roles, the audit actor, logout, login limits, SSO."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from leadrelay import queries
from leadrelay.api.app import create_app
from leadrelay.models import AdminSession, DeadLetterStatus
from leadrelay.runtime import Runtime
from leadrelay.settings import Settings
from tests.conftest import OPEN_BUDGET, ThreadedServer, make_settings, routing_with
from tests.dead_letters.test_replay import settle
from tests.helpers import canonical, dead_letters, ingest

OPERATOR_TOKEN = "jess-operator-token-0123456789"
VIEWER_TOKEN = "vic-viewer-token-0123456789ab"
LEGACY_TOKEN = "admin-token-for-tests-0123456789"
USERS = f"jess:operator:{OPERATOR_TOKEN}\nvic:viewer:{VIEWER_TOKEN}"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
NOT_ACTIONS = {"/admin/login", "/admin/logout"}  # anyone may try to log in, and any role may log out


class Site:
    def __init__(self, rt: Runtime, base: str, app: Any) -> None:
        self.rt, self.base, self.app = rt, base, app

    def login(self, token: str, *, source: str | None = None, **form: str) -> httpx.Client:
        client = httpx.Client(base_url=self.base, headers={"x-forwarded-for": source} if source else {})
        response = client.post("/admin/login", data={"token": token, **form})
        assert response.status_code == 303, response.text
        return client


def csrf_of(client: httpx.Client) -> str:
    page = client.get("/admin")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def runtime(url: str, sandbox: Any, **settings: object) -> Runtime:
    values: dict[str, object] = {
        "database_url": url,
        "admin_token": LEGACY_TOKEN,
        "admin_users": USERS,
        "nexudus_base_url": sandbox.base_url,
        "nexudus_username": "sandbox@leadrelay.local",
        "nexudus_password": "sandbox",
        **settings,
    }
    return Runtime.load(make_settings(**values), routing_with(accounts=OPEN_BUDGET))


@contextmanager
def serving(url: str, sandbox: Any, **settings: object) -> Iterator[Site]:
    """The receiver over real HTTP, with named admins; its test leads go to itself."""
    rt = runtime(url, sandbox, **settings)
    app = create_app(rt)
    try:
        with ThreadedServer(app) as server:
            rt.settings.test_lead_url = server.base_url
            yield Site(rt, server.base_url, app)
    finally:
        rt.close()


@pytest.fixture
def site(clean_db, redis_broker, sandbox) -> Iterator[Site]:
    with serving(clean_db, sandbox) as found:
        yield found


def a_dead_letter(rt: Runtime, n: int = 0) -> tuple[int, int]:
    lead_id = ingest(rt, canonical(external_id=f"junk-{n}", contact={"full_name": "nobody"}))
    assert settle(rt, lead_id) == "dead"
    [letter] = dead_letters(rt, lead_id)
    return letter.id, lead_id


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, in included routers too (FastAPI ≥ 0.165 wraps them; their paths hold the prefix)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def mutating_routes(app: Any) -> list[tuple[str, str, APIRoute]]:
    """Every admin route that may change something, as the router has them (new ones included)."""
    found = []
    for route in api_routes(app.routes):
        if not route.path.startswith("/admin"):
            continue
        for method in sorted(route.methods & MUTATING):
            if route.path not in NOT_ACTIONS:
                found.append((method, route.path, route))
    return found


def _filled(path: str, letter_id: int, lead_id: int) -> str:
    values = {"letter_id": str(letter_id), "lead_id": str(lead_id), "channel": "canonical"}
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m.group(1), "1"), path)


def test_a_viewer_is_refused_on_every_mutating_route_of_the_page_and_the_api(site: Site) -> None:
    letter_id, lead_id = a_dead_letter(site.rt)
    routes = mutating_routes(site.app)
    assert len([r for r in routes if r[1].startswith("/admin/api/")]) >= 5
    assert len([r for r in routes if not r[1].startswith("/admin/api/")]) >= 4
    viewer = site.login(VIEWER_TOKEN)
    csrf = csrf_of(viewer)
    api = httpx.Client(base_url=site.base, headers={"Authorization": f"Bearer {VIEWER_TOKEN}"})
    for method, path, route in routes:
        url = _filled(path, letter_id, lead_id)
        if path.startswith("/admin/api/"):
            response = api.request(method, url, json={"why": "x", "contact": {}})
            assert response.status_code == 403, (method, path, response.text)
            assert "viewer" in response.json()["detail"]
        else:
            form = {field.alias: "1" for field in route.dependant.body_params} | {"csrf": csrf}
            response = viewer.request(method, url, data=form)
            assert response.status_code == 403, (method, path, response.text)
            assert "only an operator may" in response.text
    with site.rt.sessions() as session:
        assert queries.audit_entries(session) == []  # nothing was done
    assert [d.status for d in dead_letters(site.rt, lead_id)] == [DeadLetterStatus.open]
    # the viewer may still look
    assert viewer.get(f"/admin/dead-letters/{letter_id}").status_code == 200
    assert api.get(f"/admin/api/dead-letters/{letter_id}").status_code == 200


def test_the_audit_actor_is_the_identity_never_a_typed_name(site: Site) -> None:
    first, _ = a_dead_letter(site.rt, 1)
    second, _ = a_dead_letter(site.rt, 2)
    jess = site.login(OPERATOR_TOKEN, name="Mallory")  # the old form's typed name means nothing now
    assert "web:jess · operator" in jess.get("/admin").text
    response = jess.post(f"/admin/dead-letters/{first}/discard", data={"csrf": csrf_of(jess), "why": "spam"})
    assert response.status_code == 303
    api = httpx.Client(
        base_url=site.base,
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}", "X-Leadrelay-Actor": "Mallory"},
    )
    assert api.post(f"/admin/api/dead-letters/{second}/discard", json={"why": "spam"}).status_code == 204
    legacy = httpx.Client(base_url=site.base, headers={"Authorization": f"Bearer {LEGACY_TOKEN}"})
    assert legacy.get("/admin/api/dead-letters").status_code == 200  # LEADRELAY_ADMIN_TOKEN still works
    with site.rt.sessions() as session:
        actors = sorted((e.actor, e.target) for e in queries.audit_entries(session))
    assert actors == [("api:jess", f"dead_letter:{second}"), ("web:jess", f"dead_letter:{first}")]


def test_logout_ends_the_session_on_the_server_and_the_old_cookie_is_refused(site: Site) -> None:
    jess = site.login(OPERATOR_TOKEN, user="jess")
    cookie = jess.cookies["leadrelay_admin"]
    with site.rt.sessions() as session:
        assert session.execute(select(func.count()).select_from(AdminSession)).scalar_one() == 1
        [row] = session.execute(select(AdminSession)).scalars().all()
        assert cookie not in (row.id_sha256, row.csrf)  # the ledger keeps the id's digest only
    assert jess.post("/admin/logout", data={"csrf": csrf_of(jess)}).status_code == 303

    stolen = httpx.Client(base_url=site.base, cookies={"leadrelay_admin": cookie})
    again = stolen.get("/admin")
    assert again.status_code == 303 and again.headers["location"] == "/admin/login"
    with site.rt.sessions() as session:
        assert session.execute(select(func.count()).select_from(AdminSession)).scalar_one() == 0


def test_a_session_ends_when_its_token_is_rotated(site: Site) -> None:
    vic = site.login(VIEWER_TOKEN)
    assert vic.get("/admin").status_code == 200
    site.rt.settings.admin_users = Settings(admin_users=f"vic:viewer:{VIEWER_TOKEN}-rotated").admin_users
    assert vic.get("/admin").status_code == 303


def test_failed_logins_are_limited_per_address_and_per_name(site: Site) -> None:
    site.rt.settings.admin_login_attempts = 3
    post = httpx.post
    for _ in range(3):
        bad = post(
            f"{site.base}/admin/login", data={"token": "guess"}, headers={"x-forwarded-for": "198.51.100.1"}
        )
        assert bad.status_code == 401
    limited = post(
        f"{site.base}/admin/login",
        data={"token": OPERATOR_TOKEN},
        headers={"x-forwarded-for": "198.51.100.1"},
    )
    assert limited.status_code == 429  # the right token too: guessing cannot go on
    assert 0 < int(limited.headers["retry-after"]) <= site.rt.settings.admin_login_window_seconds
    assert "Too many failed logins" in limited.text
    site.login(OPERATOR_TOKEN, source="198.51.100.2")  # another address is not held back

    for n in range(3):  # one name guessed from three addresses
        bad = post(
            f"{site.base}/admin/login",
            data={"token": "guess", "user": "vic"},
            headers={"x-forwarded-for": f"203.0.113.{n}"},
        )
        assert bad.status_code == 401
    named = post(
        f"{site.base}/admin/login",
        data={"token": VIEWER_TOKEN, "user": "vic"},
        headers={"x-forwarded-for": "203.0.113.50"},
    )
    assert named.status_code == 429
    site.login(OPERATOR_TOKEN, source="203.0.113.51", user="jess")


SSO = {
    "admin_sso": "oauth2-proxy",
    "admin_trusted_proxies": "127.0.0.1",
    "admin_sso_roles": "sam@example.com=operator,*@example.com=viewer",
}


@pytest.fixture
def sso_site(clean_db, redis_broker, sandbox) -> Iterator[Site]:
    with serving(clean_db, sandbox, **SSO) as found:
        yield found


def sso_client(site: Site, email: str, *, source: str | None = None) -> httpx.Client:
    headers = {"x-forwarded-email": email} | ({"x-forwarded-for": source} if source else {})
    return httpx.Client(base_url=site.base, headers=headers)


def test_sso_headers_are_believed_from_a_trusted_proxy_with_their_role(sso_site: Site) -> None:
    sam = sso_client(sso_site, "sam@example.com")
    assert sam.get("/admin/login").status_code == 303  # the proxy vouched: a session, no form
    assert "web:sam@example.com · operator" in sam.get("/admin").text
    ann = sso_client(sso_site, "ann@example.com")
    ann.get("/admin/login")
    assert "web:ann@example.com · viewer" in ann.get("/admin").text
    letter_id, _ = a_dead_letter(sso_site.rt)
    refused = ann.post(f"/admin/dead-letters/{letter_id}/discard", data={"csrf": csrf_of(ann), "why": "x"})
    assert refused.status_code == 403

    # the cookie belongs to the proxy's user: another user's header with it is no session
    sam.headers["x-forwarded-email"] = "ann@example.com"
    assert sam.get("/admin").status_code == 303


@pytest.mark.parametrize(
    ("email", "source"),
    [
        ("sam@example.com", "203.0.113.9"),  # not from the trusted proxy (uvicorn took X-Forwarded-For)
        ("eve@elsewhere.org", None),  # no role for this identity
        ("", None),
    ],
)
def test_sso_headers_are_ignored_from_an_untrusted_source_or_without_a_role(
    sso_site: Site, email: str, source: str | None
) -> None:
    client = sso_client(sso_site, email, source=source)
    form = client.get("/admin/login")
    assert form.status_code == 200 and 'name="token"' in form.text
    assert "leadrelay_admin" not in client.cookies


def test_sso_headers_are_ignored_when_sso_is_off(site: Site) -> None:
    client = sso_client(site, "sam@example.com")
    assert client.get("/admin/login").status_code == 200
    assert client.get("/admin").status_code == 303
