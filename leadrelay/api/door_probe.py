""" "Send a test lead": a channel's sample, signed with its own secret, through the real door over HTTP.

The sample is the first ``*.json`` of ``adapters/<adapter>/fixtures/samples/``
(the channel's adapter, else its name). It is posted to ``LEADRELAY_TEST_LEAD_URL``
(default ``LEADRELAY_PUBLIC_URL``) ``/webhooks/<channel>``, signed as the channel's
scheme says, with a fresh delivery id: it is a real lead, and goes the whole way
(a second test of the same sample is recognised as a duplicate by the pipeline).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from leadrelay import adapters
from leadrelay.intake.signatures import sign_hmac, sign_standard
from leadrelay.intake.webhooks import Door

ADAPTERS = Path(adapters.__file__).resolve().parent
TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Probe:
    channel: str
    status: int | None  # None: no answer (the message says why)
    lead_id: int | None
    duplicate: bool | None
    message: str

    @property
    def accepted(self) -> bool:
        return self.status == 202


def sample_for(channel: str, adapter: str | None) -> Path | None:
    folder = ADAPTERS / (adapter or channel) / "fixtures" / "samples"
    found = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return found[0] if found else None


def signed(door: Door, body: bytes, *, now: int | None = None) -> tuple[str, dict[str, str]]:
    """The path after ``/webhooks/`` and the headers that make ``door`` accept ``body``."""
    config, key = door.config, door.keys[0]
    delivery_id = f"test_{secrets.token_hex(12)}"
    timestamp = int(time.time()) if now is None else now
    headers = {"content-type": "application/json", "user-agent": "leadrelay-test-lead"}
    path = door.channel
    if config.scheme == "standard-webhooks":
        headers |= {
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard(key, delivery_id, timestamp, body),
        }
    elif config.scheme == "hmac-sha256":
        stamped = timestamp if config.timestamp_header else None
        headers[config.signature_header.lower()] = sign_hmac(key, body, stamped)
        if config.timestamp_header:
            headers[config.timestamp_header.lower()] = str(timestamp)
    elif config.token_in == "path":  # noqa: S105  (where the token goes, not a token)
        path = f"{door.channel}/{key.decode()}"
    else:
        headers["authorization"] = f"Bearer {key.decode()}"
    if config.id_header:
        headers[config.id_header.lower()] = delivery_id
    return path, headers


async def send(door: Door, adapter: str | None, base_url: str) -> Probe:
    """Post the channel's sample through the door; the answer, or why there is none."""
    sample = sample_for(door.channel, adapter)
    if sample is None:
        return Probe(door.channel, None, None, None, f"no sample for {adapter or door.channel} in adapters/")
    body = sample.read_bytes()
    path, headers = signed(door, body)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.post(
                f"{base_url.rstrip('/')}/webhooks/{path}", content=body, headers=headers
            )
    except httpx.HTTPError as err:  # the URL may hold the channel's token: never in the message
        return Probe(door.channel, None, None, None, f"the door did not answer: {type(err).__name__}")
    try:
        answer = response.json()
    except json.JSONDecodeError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    if response.status_code == 202:
        lead_id, duplicate = answer.get("event_id"), bool(answer.get("duplicate"))
        word = "a duplicate of" if duplicate else "stored as"
        return Probe(door.channel, 202, lead_id, duplicate, f"accepted: {word} lead {lead_id}")
    reason = str(answer.get("message") or answer.get("error") or response.reason_phrase)[:300]
    return Probe(door.channel, response.status_code, None, None, f"refused: {reason}")
