"""What a security review checks: limits, CORS, headers, secrets from files, bound outbound
calls, no SQL built from strings."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from leadrelay.routing import RoutingError, parse_routing
from leadrelay.runtime import Runtime
from leadrelay.settings import Settings
from tests.conftest import REPO
from tests.dead_letters.test_replay import settle
from tests.helpers import canonical, ingest, lead
from tests.operations.support import ADMIN_TOKEN, receiver, runtime_with

PRODUCT = [REPO / "leadrelay", REPO / "worker", REPO / "adapters"]
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def site(clean_db, redis_broker, sandbox) -> Iterator[str]:
    rt = runtime_with(clean_db, sandbox, max_request_bytes=64 * 1024)
    with receiver(rt) as base:
        yield base
    rt.close()


@pytest.mark.parametrize("path", ["/webhooks/canonical", "/admin/api/leads", "/admin/login", "/readyz"])
def test_cors_is_closed_no_other_origin_may_read_an_answer(site: str, path: str) -> None:
    preflight = httpx.options(
        f"{site}{path}",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code in (405, 404)
    simple = httpx.get(f"{site}{path}", headers={"Origin": "https://evil.example", **BEARER})
    assert not any(h.startswith("access-control-") for h in simple.headers)


def test_the_admin_page_sends_its_security_headers(site: str) -> None:
    with httpx.Client(base_url=site) as client:
        pages = [client.get("/admin/login")]
        assert client.post("/admin/login", data={"token": ADMIN_TOKEN, "name": "Jess"}).status_code == 303
        pages += [client.get("/admin"), client.get("/admin/dead-letters"), client.get("/admin/leads")]
    for page in pages:
        assert page.status_code == 200, page.url
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src" not in csp  # no JavaScript at all
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"


def test_too_many_or_too_large_headers_get_431(site: str) -> None:
    many = {f"x-filler-{n}": "1" for n in range(120)}
    assert httpx.get(f"{site}/healthz", headers=many).status_code == 431
    large = httpx.get(f"{site}/healthz", headers={"x-filler": "a" * 20_000})
    assert large.status_code == 431
    assert large.json()["error"] == "headers_too_large"
    assert httpx.get(f"{site}/healthz", headers={"x-filler": "a" * 1000}).status_code == 200


def test_an_admin_body_over_the_limit_gets_413_declared_or_streamed(site: str) -> None:
    big = json.dumps({"message": "x" * (70 * 1024)}).encode()
    url = f"{site}/admin/api/dead-letters/1/lead"
    declared = httpx.put(url, content=big, headers={**BEARER, "content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"] == "too_large"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    streamed = httpx.put(url, content=chunks(), headers={**BEARER, "content-type": "application/json"})
    assert streamed.status_code == 413
    small = httpx.put(url, json={"message": "hi"}, headers=BEARER)
    assert small.status_code == 404  # under the limit: the request reaches the API


def test_secrets_can_come_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "admin_token"
    token.write_text("from-a-file-0123456789\n")
    password = tmp_path / "nexudus_password"
    password.write_text("s3cret")
    monkeypatch.setenv("LEADRELAY_ADMIN_TOKEN_FILE", str(token))
    monkeypatch.setenv("NEXUDUS_PASSWORD_FILE", str(password))
    settings = Settings()
    assert (
        settings.admin_token is not None
        and settings.admin_token.get_secret_value() == "from-a-file-0123456789"
    )
    assert settings.nexudus_password is not None and settings.nexudus_password.get_secret_value() == "s3cret"
    assert "from-a-file" not in repr(settings) and "s3cret" not in repr(settings)

    monkeypatch.setenv("LEADRELAY_ADMIN_TOKEN", "also-set-directly-0123")
    with pytest.raises(ValueError, match="LEADRELAY_ADMIN_TOKEN_FILE: the value is also set directly"):
        Settings()
    monkeypatch.delenv("LEADRELAY_ADMIN_TOKEN")
    monkeypatch.setenv("LEADRELAY_ADMIN_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="LEADRELAY_ADMIN_TOKEN_FILE: cannot read"):
        Settings()


def test_routing_secrets_can_come_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "webhook_secret"
    secret.write_text("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n")
    password = tmp_path / "password"
    password.write_text("nexudus-pass")
    routing = parse_routing(
        {
            "accounts": {"main": {"username": "ops@example.com", "password_file": str(password)}},
            "channels": {
                "canonical": {"lead_source": 11, "webhook": {"secret_file": str(secret)}},
            },
        },
        "test",
    )
    assert routing.channels["canonical"].webhook.keys("channels.canonical.webhook")  # type: ignore[union-attr]
    found = routing.accounts["main"].resolved_password("accounts.main", None)
    assert found is not None and found.get_secret_value() == "nexudus-pass"
    missing = parse_routing(
        {"channels": {"canonical": {"lead_source": 11, "webhook": {"secret_file": str(tmp_path / "nope")}}}},
        "test",
    )
    with pytest.raises(RoutingError) as err:
        missing.channels["canonical"].webhook.keys("channels.canonical.webhook")  # type: ignore[union-attr]
    assert err.value.problems[0].startswith("channels.canonical.webhook.secret_file: cannot read")


def test_a_receiver_takes_its_webhook_secret_from_a_file(clean_db, redis_broker, sandbox, tmp_path) -> None:
    from tests.conftest import OPEN_BUDGET, routing_with
    from tests.intake.test_webhooks import signed

    key = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="
    (tmp_path / "secret").write_text(key)
    routing = routing_with(
        accounts=OPEN_BUDGET,
        channels={
            "canonical": {
                "lead_source": 11,
                "agent_id": 3004,
                "webhook": {"secret_file": str(tmp_path / "secret")},
            }
        },
    )
    rt: Runtime = runtime_with(clean_db, sandbox, routing)
    try:
        with receiver(rt) as base:
            body = json.dumps({"contact": {"email": "a@example.com"}}).encode()
            assert (
                httpx.post(f"{base}/webhooks/canonical", content=body, headers=signed(key, body)).status_code
                == 202
            )
    finally:
        rt.close()


def _sources() -> Iterator[tuple[Path, ast.AST]]:
    for root in PRODUCT:
        for path in sorted(root.rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return f"{_name(func.value)}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


SQL_CALLS = ("text", "sa.text", "sqlalchemy.text", "exec_driver_sql", "execute")


def test_no_sql_is_built_from_strings() -> None:
    """Every textual SQL statement is a constant, its values bound as parameters."""
    built = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = _name(node.func)
            if not (name in SQL_CALLS or name.endswith((".exec_driver_sql", ".execute"))):
                continue
            first = node.args[0]
            if isinstance(first, ast.JoinedStr | ast.BinOp) or (
                isinstance(first, ast.Call) and _name(first.func).endswith(".format")
            ):
                built.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert built == []


OUTBOUND = ("httpx.get", "httpx.post", "httpx.put", "httpx.request", "httpx.Client", "httpx.AsyncClient")
SOCKETS = (
    "imaplib.IMAP4",
    "imaplib.IMAP4_SSL",
    "smtplib.SMTP",
    "smtplib.SMTP_SSL",
    "socket.create_connection",
)


def test_every_outbound_call_has_a_timeout() -> None:
    unbounded = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and _name(node.func) in OUTBOUND + SOCKETS
                and not any(k.arg == "timeout" for k in node.keywords)
            ):
                unbounded.append(f"{path.relative_to(REPO)}:{node.lineno} {_name(node.func)}")
    assert unbounded == []


def test_a_nul_character_in_a_partners_text_does_not_stop_the_lead(runtime) -> None:
    """Postgres text and JSONB cannot hold U+0000: it is dropped, and the lead is delivered."""
    contact = {"full_name": "Ann\u0000 Lee", "email": "ann.lee@example.com"}
    lead_id = ingest(runtime, canonical(external_id="nul-1", contact=contact, message="six\u0000 desks"))
    assert settle(runtime, lead_id) == "delivered"
    stored = lead(runtime, lead_id).lead
    assert stored is not None
    assert (stored["contact"]["full_name"], stored["message"]) == ("Ann Lee", "six desks")


def _latin1_cookie(value: str) -> dict[str, bytes]:
    """A Cookie header as a browser may send it: bytes that are not ASCII (read as Latin-1)."""
    return {"cookie": f"leadrelay_admin={value}".encode("latin-1")}


def test_a_session_cookie_that_is_not_ascii_is_no_session(site: str) -> None:
    for cookie in ("e30.\xe9t\xe9", "\xe9\xe9.\xe9", "e30.abc\xff"):
        page = httpx.get(f"{site}/admin", headers=_latin1_cookie(cookie))
        assert page.status_code == 303 and page.headers["location"].endswith("/admin/login"), cookie


def test_a_csrf_token_that_is_not_ascii_is_a_stale_form(site: str) -> None:
    with httpx.Client(base_url=site) as client:
        assert client.post("/admin/login", data={"token": ADMIN_TOKEN, "name": "Jess"}).status_code == 303
        answer = client.post("/admin/logout", data={"csrf": "\xe9t\xe9"})
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/admin/api/dead-letters/1/lead"),
        ("POST", "/admin/api/dead-letters/replay"),
        ("POST", "/admin/api/dead-letters/1/discard"),
    ],
)
def test_an_admin_body_nested_too_deeply_gets_400(site: str, method: str, path: str) -> None:
    """FastAPI reads these bodies and already answers 400: kept so that it stays so."""
    deep = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
    answer = httpx.request(
        method, f"{site}{path}", content=deep, headers={**BEARER, "content-type": "application/json"}
    )
    assert answer.status_code == 400, answer.text[:200]


@pytest.fixture
def behind_a_proxy(clean_db, redis_broker, sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The receiver as a TLS proxy on another host reaches it: uvicorn trusts no proxy address here."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "192.0.2.1")
    rt = runtime_with(clean_db, sandbox)
    with receiver(rt) as base:
        yield base
    rt.close()


@pytest.mark.parametrize(
    "says", [{"x-forwarded-proto": "https"}, {"forwarded": "for=198.51.100.7;proto=https"}]
)
def test_the_admin_cookie_is_secure_when_a_tls_proxy_says_the_browser_used_https(
    behind_a_proxy: str, says: dict[str, str]
) -> None:
    login = {"token": ADMIN_TOKEN, "name": "Jess"}
    plain = httpx.post(f"{behind_a_proxy}/admin/login", data=login)
    assert plain.status_code == 303 and "secure" not in plain.headers["set-cookie"].lower()

    proxied = httpx.post(f"{behind_a_proxy}/admin/login", data=login, headers=says)

    assert proxied.status_code == 303
    assert "; secure" in proxied.headers["set-cookie"].lower()
