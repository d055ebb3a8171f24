"""The Nexudus client keeps no cookies: each request is authenticated by its bearer token alone.

A cookie Nexudus sets (a load balancer's, a web session's), on the token's answer
or any later one, is not sent back; cookies given to the client are refused, and
its jar takes none in by hand either.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from leadrelay.nexudus.client import NexudusClient, _CookielessClient
from tests.helpers import socket_server


@pytest.fixture
def nexudus() -> Iterator[tuple[str, list[bytes]]]:
    """Answers the token request and every call, each answer setting a cookie; keeps each request's head."""
    heads: list[bytes] = []

    def answer(conn: socket.socket, _stop: threading.Event) -> None:
        head = conn.recv(65536).split(b"\r\n\r\n", 1)[0]
        heads.append(head)
        token = head.startswith(b"POST /api/token")
        payload = (
            {"access_token": "t", "expires_in": 3600} if token else {"Records": [], "HasNextPage": False}
        )
        body = json.dumps(payload).encode()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Set-Cookie: ARRAffinity=node-7; Path=/; HttpOnly\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    with socket_server(answer) as url:
        yield url, heads


def test_a_cookie_nexudus_sets_is_never_sent_back(nexudus: tuple[str, list[bytes]]) -> None:
    url, heads = nexudus
    client = NexudusClient(account="main", base_url=url, username="u", password=SecretStr("p"))
    try:
        assert client.find_coworker("ann@example.com").ok
        assert client.find_coworker("bob@example.com").ok
    finally:
        client.close()
    assert len(heads) == 3 and heads[0].startswith(b"POST /api/token ")
    assert all(head.startswith(b"GET /api/spaces/coworkers?") for head in heads[1:])
    assert all(b"\r\ncookie:" not in head.lower() for head in heads)
    assert all(b"authorization: bearer t" in head.lower() for head in heads[1:])


def test_the_client_refuses_cookies_it_is_given_and_its_jar_takes_none() -> None:
    with pytest.raises(ValueError, match="keeps no cookies"):
        _CookielessClient(cookies={"session": "x"})
    http, other = _CookielessClient(), _CookielessClient()
    try:
        with pytest.raises(ValueError, match="keeps no cookies"):
            http.cookies = {"session": "x"}
        http.cookies.set("session", "x")  # by hand: dropped too
        http.cookies.update({"session": "x"})
        assert not http.cookies and http.cookies is not other.cookies
        assert "cookie" not in http.build_request("GET", "https://spaces.nexudus.com/").headers
    finally:
        http.close()
        other.close()
