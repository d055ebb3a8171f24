"""Signed webhook deliveries, made before a run so the load generator only replays them.

Each delivery is a distinct enquiry (its own portal reference, person and company)
with its own ``webhook-id``, signed with the channel's Standard Webhooks secret and
timestamped now: a run must replay them within the receiver's ±5-minute tolerance.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from leadrelay.demo import DEMO_LEAD
from leadrelay.intake.signatures import sign_standard
from leadrelay.routing import Routing

CHANNEL = "canonical"


def lead(serial: int, *, listing: str = "foundry", tag: str = "b") -> dict[str, Any]:
    """A distinct canonical enquiry; ``tag`` keeps the runs of one bench apart."""
    body = json.loads(json.dumps(DEMO_LEAD))
    body["external_id"] = f"bench-{tag}-{serial:07}"
    body["contact"] = {
        "full_name": f"Client {tag} {serial:07}",
        "email": f"client.{tag}.{serial}@firm{serial}.example",
        "phone": f"+44 7700 9{serial % 100000:05}",
        "company": f"Firm {tag} {serial:07}",
    }
    body["listing"] = {**body["listing"], "id": listing}
    return body


def secret(routing: Routing) -> bytes:
    """The channel's (first) HMAC key."""
    webhook = routing.channels[CHANNEL].webhook
    assert webhook is not None
    return webhook.keys(f"channels.{CHANNEL}.webhook")[0]


def headers(secret_value: bytes, body: bytes, *, delivery_id: str | None = None) -> dict[str, str]:
    delivery_id = delivery_id or f"msg_{uuid.uuid4().hex}"
    stamp = int(time.time())
    return {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign_standard(secret_value, delivery_id, stamp, body),
    }


def write_requests(path: Path, secret_value: bytes, count: int, *, first: int = 0, tag: str = "b") -> Path:
    """``count`` signed deliveries, one per line, for bench/replay.lua."""
    stamp = int(time.time())
    with path.open("w") as out:
        for serial in range(first, first + count):
            body = json.dumps(lead(serial, tag=tag), separators=(",", ":")).encode()
            delivery_id = f"msg_{tag}_{serial:08}"
            signature = sign_standard(secret_value, delivery_id, stamp, body)
            out.write(f"{delivery_id}\t{stamp}\t{signature}\t{body.decode()}\n")
    return path


def post(client: httpx.Client, secret_value: bytes, body: dict[str, Any]) -> httpx.Response:
    """One signed delivery through the receiver, as a partner portal sends it."""
    raw = json.dumps(body).encode()
    return client.post(f"/webhooks/{CHANNEL}", content=raw, headers=headers(secret_value, raw))
