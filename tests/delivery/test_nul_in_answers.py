"""An answer from Nexudus with a NUL character in it still settles the lead.

Postgres's text and jsonb take no NUL: kept as it came, the answer's message, errors
or excerpt made every later write of the lead fail, so it never settled. What the
ledger keeps of it says U+FFFD instead. A rare answer, shaped here by a server of
our own (the sandbox answers as Nexudus does); the ledger is a real Postgres.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadrelay.runtime import Runtime
from tests.conftest import UNTHROTTLED, fresh_ledger, make_settings, routing_with
from tests.helpers import attempts, canonical, dead_letters, ingest, settle, socket_server

REJECTION = {
    "Message": "Email\u0000 is not valid",
    "Errors": [{"Message": "bad\u0000", "PropertyName": "Email"}],
}


# the JSON escape (a message and errors with a NUL), and a raw NUL (no JSON: the excerpt has it)
ANSWERS = {"escaped": json.dumps(REJECTION).encode(), "raw": b'{"Message": "Email\x00 is not valid"}'}


def _nexudus(rejection: bytes) -> Any:
    def answer(conn: socket.socket, _stop: threading.Event) -> None:
        """A token for the sign-in; to every call, a 400 with a NUL in it."""
        token = conn.recv(65536).startswith(b"POST /api/token")
        status, body = (
            ("200 OK", json.dumps({"access_token": "t", "expires_in": 3600}).encode())
            if token
            else ("400 Bad Request", rejection)
        )
        head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)

    return answer


@pytest.fixture(params=sorted(ANSWERS))
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    with socket_server(_nexudus(ANSWERS[request.param])) as url:
        settings = make_settings(
            database_url=fresh_ledger(request, tmp_path, "postgres"),
            nexudus_base_url=url,
            nexudus_username="u@operator.example",
            nexudus_password="p",
        )
        rt = Runtime.load(settings, routing_with(accounts={"main": {"limits": UNTHROTTLED}}))
        yield rt
        rt.close()


def test_a_rejection_with_a_nul_in_it_ends_a_dead_letter(runtime: Runtime) -> None:
    lead_id = ingest(runtime, canonical(external_id="nul-1"))
    assert settle(runtime, lead_id) == "dead"
    [letter] = dead_letters(runtime, lead_id)
    [attempt] = attempts(runtime, lead_id)
    kept = json.dumps([letter.detail, attempt.error, attempt.response], ensure_ascii=False)
    assert "\x00" not in kept and "\ufffd" in kept
