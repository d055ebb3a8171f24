"""The Nexudus client goes through the proxy the environment names, as httpx alone would.

Giving httpx a transport of our own (the one that keeps each call's deadline)
turns httpx's own reading of ``HTTP(S)_PROXY`` and ``NO_PROXY`` off; a deployment
behind an egress proxy must still reach Nexudus.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from leadrelay.nexudus.client import NexudusClient
from leadrelay.nexudus.deadline import environment_proxy
from tests.helpers import socket_server

NEXUDUS = "http://nexudus.invalid"  # resolves nowhere: only a proxy can answer for it


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[bytes]]]:
    """A forward proxy that answers every request itself and remembers its request line."""
    seen: list[bytes] = []

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        seen.append(conn.recv(65536).split(b"\r\n", 1)[0])
        body = b'{"Records": [], "HasNextPage": false}'
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)

    with socket_server(answer) as url:
        yield url, seen


def test_calls_go_through_the_environments_proxy(proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    client = NexudusClient(account="main", base_url=NEXUDUS, username="u", password=SecretStr("p"))
    token = type("T", (), {"access": "t", "refresh": None, "expires_at": time.monotonic() + 3600})()
    client._tokens._token = token  # signed in already
    try:
        assert client.find_coworker("ann@example.com").ok
    finally:
        client.close()
    assert seen and seen[0].startswith(b"GET http://nexudus.invalid/api/spaces/coworkers?")


def test_no_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "spaces.nexudus.com")
    assert environment_proxy("https://example.nexudus.com") == "http://proxy.internal:3128"
    assert environment_proxy("https://spaces.nexudus.com") is None
