"""A ledger full of settled leads, written in bulk, for the overview's tests and its timing.

A stand-in until leadrelay/testing/seed.py (seed_leads) lands: leads across channels,
states and days, with delivery times for the delivered ones and an open (or resolved)
dead letter for each dead one. Returns its own tally, so a test can check the page
against what was written as well as against the lists.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from leadrelay.db import utcnow
from leadrelay.models import DeadLetter, DeadLetterStatus, DeadReason, Lead, LeadState

CHANNELS = ("hubblehq", "kontor", "workthere")
STATES = (
    [LeadState.delivered] * 14
    + [LeadState.duplicate] * 3
    + [LeadState.dead] * 2
    + [LeadState.ignored, LeadState.attached]
)
REASONS = (DeadReason.validation, DeadReason.routing, DeadReason.exhausted, DeadReason.auth)
BATCH = 2_000


@dataclass
class Seeded:
    leads: Counter[tuple[str, date, str]] = field(default_factory=Counter)  # (channel, day, state)
    open_letters: Counter[str] = field(default_factory=Counter)  # by reason
    seconds: dict[str, list[float]] = field(default_factory=dict)  # delivery times by channel


def _lead(i: int, rng: random.Random, now: datetime, days: int, out: Seeded) -> dict[str, object]:
    channel = rng.choice(CHANNELS)
    received = now - timedelta(seconds=rng.uniform(0, days * 86400))
    state = rng.choice(STATES)
    row: dict[str, object] = {
        "channel": channel,
        "source": "webhook",
        "intake_key": f"seed:{i}:{rng.random()}",
        "received_at": received,
        "state": state,
        "state_changed_at": received,
        "raw_body": b"{}",
        "raw_sha256": hashlib.sha256(str(i).encode()).hexdigest(),
        "raw_meta": {},
        "content_type": "application/json",
        "external_id": f"enq_{i:07d}",
        "lead": {"contact": {"full_name": f"Person {i}", "email": f"person{i}@example.com"}},
        "delivered_at": None,
        "opportunity_id": None,
    }
    if state == LeadState.delivered:
        took = rng.lognormvariate(1.0, 1.0)
        row["delivered_at"] = received + timedelta(seconds=took)
        row["opportunity_id"] = 100_000 + i
        out.seconds.setdefault(channel, []).append(took)
    out.leads[(channel, received.date(), state)] += 1
    return row


def seed(engine: Engine, n: int, *, days: int = 30, rng_seed: int = 15) -> Seeded:
    """``n`` settled leads received over the last ``days`` days, in batches of BATCH."""
    rng = random.Random(rng_seed)
    now = utcnow()
    out = Seeded()
    for start in range(0, n, BATCH):
        rows = [_lead(i, rng, now, days, out) for i in range(start, min(n, start + BATCH))]
        with engine.begin() as conn:
            ids = conn.execute(insert(Lead).returning(Lead.id, Lead.state), rows).all()
            letters = []
            for lead_id, state in ids:
                if state != LeadState.dead:
                    continue
                reason = rng.choice(REASONS)
                status = DeadLetterStatus.open if rng.random() < 0.8 else DeadLetterStatus.discarded
                letters.append(
                    {
                        "lead_id": lead_id,
                        "reason": reason,
                        "message": "seeded",
                        "detail": {},
                        "status": status,
                    }
                )
                if status == DeadLetterStatus.open:
                    out.open_letters[reason] += 1
            if letters:
                conn.execute(insert(DeadLetter), letters)
    return out
