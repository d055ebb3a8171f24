"""The token endpoint and the authentication of every other call."""

from __future__ import annotations

import time

import httpx
import pytest

from leadrelay.sandbox import SandboxHandle

from .support import BUSINESSES, DENIED, PASSWORD, TOKEN, USER


def password_grant(
    client: httpx.Client, username: str = USER, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    return client.post(
        TOKEN, data={"grant_type": "password", "username": username, "password": password, **extra}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_password_grant_answers_a_bearer_token_pair(anon: httpx.Client) -> None:
    response = password_grant(anon)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 604_799
    assert body["access_token"] != body["refresh_token"]
    assert anon.get(BUSINESSES, headers=bearer(body["access_token"])).status_code == 200


def test_json_body_is_an_unsupported_grant_type(anon: httpx.Client) -> None:
    response = anon.post(TOKEN, json={"grant_type": "password", "username": USER, "password": PASSWORD})

    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type"}


def test_unknown_grant_type_is_unsupported(anon: httpx.Client) -> None:
    response = anon.post(TOKEN, data={"grant_type": "client_credentials"})

    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type"}


@pytest.mark.parametrize(
    ("username", "password"),
    [(USER, "wrong"), ("nobody@example.com", PASSWORD), (USER, ""), ("", "")],
)
def test_bad_credentials_are_an_invalid_grant(anon: httpx.Client, username: str, password: str) -> None:
    response = password_grant(anon, username, password)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert body["error_description"]
    assert "access_token" not in body


def test_refresh_grant_issues_a_new_pair_and_uses_the_refresh_token_up(anon: httpx.Client) -> None:
    first = password_grant(anon).json()

    refreshed = anon.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )

    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["token_type"] == "bearer"
    assert {second["access_token"], second["refresh_token"]}.isdisjoint(first.values())
    assert anon.get(BUSINESSES, headers=bearer(second["access_token"])).status_code == 200
    again = anon.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_an_unknown_refresh_token_is_an_invalid_grant(anon: httpx.Client) -> None:
    response = anon.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": "made-up"})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_access_tokens_expire_and_refresh_tokens_outlive_them(
    sandbox: SandboxHandle, anon: httpx.Client
) -> None:
    sandbox.set_tokens(expires_in=1)
    tokens = password_grant(anon).json()
    assert tokens["expires_in"] == 1
    assert anon.get(BUSINESSES, headers=bearer(tokens["access_token"])).status_code == 200

    time.sleep(1.1)

    expired = anon.get(BUSINESSES, headers=bearer(tokens["access_token"]))
    assert expired.status_code == 401
    assert expired.json() == DENIED
    fresh = anon.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert anon.get(BUSINESSES, headers=bearer(fresh.json()["access_token"])).status_code == 200


def test_http_basic_works_on_every_call(sandbox: SandboxHandle, anon: httpx.Client) -> None:
    assert anon.get(BUSINESSES, auth=(USER, PASSWORD)).status_code == 200
    wrong = anon.get(BUSINESSES, auth=(USER, "wrong"))
    assert wrong.status_code == 401
    assert wrong.json() == DENIED


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Bearer", "Basic !!!", "Basic dXNlcg==", "Token abc"],
)
def test_calls_without_valid_credentials_are_denied(anon: httpx.Client, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    response = anon.get(BUSINESSES, headers=headers)

    assert response.status_code == 401
    assert response.json() == DENIED


def test_denied_calls_perform_nothing(sandbox: SandboxHandle, anon: httpx.Client) -> None:
    response = anon.post("/api/spaces/coworkers", json={"FullName": "X", "Email": "x@example.com"})

    assert response.status_code == 401
    assert [c["Email"] for c in sandbox.coworkers() if c["Email"] == "x@example.com"] == []
    assert sandbox.counters().requests == 0


def test_two_factor_login_needs_the_code(sandbox: SandboxHandle, anon: httpx.Client) -> None:
    sandbox.add_tenant("2fa@example.com", "secret", totp="123456")

    assert password_grant(anon, "2fa@example.com", "secret").json()["error"] == "invalid_grant"
    assert password_grant(anon, "2fa@example.com", "secret", totp="000000").status_code == 400
    assert password_grant(anon, "2fa@example.com", "secret", totp="123456").status_code == 200


def test_the_token_endpoint_only_takes_post(anon: httpx.Client) -> None:
    response = anon.get(TOKEN)

    assert response.status_code == 405
    assert "GET" in response.json()["Message"]
