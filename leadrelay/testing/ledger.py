"""Seeding a ledger for tests and bench: leads recorded as the receiver would record them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from leadrelay.db import make_engine, make_session_factory, transaction
from leadrelay.intake.store import record_inbound


def record_canonical(url: str, bodies: Iterable[dict[str, Any]], *, prefix: str = "test") -> list[int]:
    """Record canonical leads in the ledger at ``url`` as the receiver would (one transaction), unqueued."""
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            return [
                record_inbound(
                    session,
                    channel="canonical",
                    source="webhook",
                    intake_key=f"{prefix}:{uuid.uuid4().hex}",
                    body=json.dumps(body).encode(),
                    content_type="application/json",
                ).lead_id
                for body in bodies
            ]
    finally:
        engine.dispose()
