"""The ingest floor: a bare ASGI callable under the same uvicorn, HMAC check + the same INSERT.

No framework, no routing, no JSON parsing, no logging, no metrics, no broker:
read the body, check the Standard Webhooks HMAC (one key), run the row's single
``INSERT … ON CONFLICT (intake_key) DO NOTHING RETURNING id`` on a psycopg async
pool in autocommit (a durable commit), answer 202. Started as
``uvicorn bench.floor_ingest:app --workers N`` with FLOOR_DSN and FLOOR_KEY (base64).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

SQL = (
    "INSERT INTO leads (channel, source, intake_key, received_at, content_type, raw_body, raw_sha256,"
    " raw_meta, state, state_changed_at, attempts, unfinished_runs, next_attempt_at, enqueued_at)"
    " VALUES ('canonical', 'webhook', %(key)s, %(at)s, %(ct)s, %(body)s, %(sha)s, %(meta)s, 'received',"
    " %(at)s, 0, 0, %(at)s, %(at)s) ON CONFLICT (intake_key) DO NOTHING RETURNING id"
)
KEY = base64.b64decode(os.environ.get("FLOOR_KEY", ""))
POOL_SIZE = 16  # as the receiver's ledger connections per process
_pool: AsyncConnectionPool[Any] | None = None


async def _reply(send: Any, status: int, body: bytes = b"") -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    global _pool
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _pool = AsyncConnectionPool(
                os.environ["FLOOR_DSN"],
                min_size=1,
                max_size=POOL_SIZE,
                kwargs={"autocommit": True},
                open=False,
            )
            await _pool.open(wait=False)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _pool is not None:
                await _pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["method"] != "POST":
        return await _reply(send, 200)  # the health probe
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    headers = dict(scope["headers"])
    delivery, stamp = headers.get(b"webhook-id", b""), headers.get(b"webhook-timestamp", b"")
    mac = hmac.new(KEY, delivery + b"." + stamp + b"." + body, hashlib.sha256).digest()
    if not hmac.compare_digest(b"v1," + base64.b64encode(mac), headers.get(b"webhook-signature", b"")):
        return await _reply(send, 401)
    params = {
        "key": f"webhook:canonical:{delivery.decode()}",
        "at": datetime.now(UTC),
        "ct": headers.get(b"content-type", b"").decode(),
        "body": body,
        "sha": hashlib.sha256(body).hexdigest(),
        "meta": json.dumps({"delivery_id": delivery.decode(), "timestamp": int(stamp)}),
    }
    assert _pool is not None
    async with _pool.connection() as conn:
        row = await (await conn.execute(SQL, params)).fetchone()
    await _reply(send, 202, b'{"event_id":%d}' % (row[0] if row else 0))
