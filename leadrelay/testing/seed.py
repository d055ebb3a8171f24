"""A big ledger in seconds: ``seed_leads(engine, 50_000)`` for search, paging and overview tests.

One ``INSERT … SELECT generate_series`` on Postgres writes settled leads as the worker
would leave them: a canonical lead with a contact (unique e-mail and phone, names from
a small list), a portal reference, and either an opportunity (delivered, 1–23 s after
intake), or, every ``duplicate_every``-th lead, a duplicate, or, every ``dead_every``-th
lead, an open dead letter. Times spread back from ``newest`` one ``spacing`` apart, so
date filters have something to cut. ANALYZE runs at the end so the planner sees the new
rows at once. On SQLite (the demo's ledger) the same leads are written row by row.

Every lead is a function of its number ``g``, so ``Seeded`` can tell what was written
(per channel, day and state; open letters by reason; delivery times) without reading it back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, insert, select, text

from leadrelay.db import utcnow
from leadrelay.models import DeadLetter, Lead

FIRST_NAMES = ("Ada", "Ben", "Chloé", "Dev", "Esther", "Farid", "Greta", "Hugo", "Ines", "Jonas")
LAST_NAMES = ("Okafor", "Lindqvist", "Moreau", "Patel", "Kowalski", "Nakamura", "O'Brien", "Silva")
REASONS = ("validation", "parse_error", "exhausted", "routing", "auth")
LATENCY_SPREAD = 23  # delivered 1..23 seconds after intake


@dataclass(frozen=True, slots=True)
class Plan:
    """What lead ``g`` is: the same arithmetic as the SQL below."""

    n: int
    channels: tuple[str, ...]
    dead_every: int
    duplicate_every: int
    newest: datetime
    spacing: timedelta

    def channel(self, g: int) -> str:
        return self.channels[g % len(self.channels)]

    def received_at(self, g: int) -> datetime:
        return self.newest - (self.n - 1 - g) * self.spacing

    def state(self, g: int) -> str:
        if self.dead_every > 0 and g % self.dead_every == self.dead_every - 1:
            return "dead"
        if self.duplicate_every > 0 and g % self.duplicate_every == 0:
            return "duplicate"
        return "delivered"

    def seconds(self, g: int) -> int:
        """Intake to opportunity, for a delivered lead."""
        return 1 + g % LATENCY_SPREAD

    def reason(self, g: int) -> str:
        """The reason of a dead lead's open letter: the dead leads take the reasons in turn."""
        return REASONS[g // max(self.dead_every, 1) % len(REASONS)]


@dataclass(frozen=True, slots=True)
class Seeded:
    prefix: str
    count: int
    first_id: int
    last_id: int
    dead: int
    plan: Plan

    def email(self, i: int) -> str:
        """The e-mail address of the ``i``-th seeded lead (0-based)."""
        return seed_email(self.prefix, i)

    def leads(self) -> Counter[tuple[str, date, str]]:
        """How many leads were written per (channel, UTC day received, state)."""
        p = self.plan
        return Counter((p.channel(g), p.received_at(g).date(), p.state(g)) for g in range(p.n))

    def open_letters(self) -> Counter[str]:
        """Open dead letters by reason."""
        p = self.plan
        return Counter(p.reason(g) for g in range(p.n) if p.state(g) == "dead")

    def seconds(self) -> dict[str, list[float]]:
        """Delivery times (intake to opportunity) per channel."""
        out: dict[str, list[float]] = {}
        for g in self.delivered():
            out.setdefault(self.plan.channel(g), []).append(float(self.plan.seconds(g)))
        return out

    def delivered(self) -> Iterator[int]:
        return (g for g in range(self.plan.n) if self.plan.state(g) == "delivered")


def seed_email(prefix: str, i: int) -> str:
    return f"{prefix}.{i}@example.test"


def seed_phone(i: int) -> str:
    return f"+44207{i % 10_000_000:07d}"


def seed_name(i: int) -> str:
    return f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)]}"


_PARAMS = """
WITH p AS (SELECT CAST(:prefix AS text) AS prefix, CAST(:channels AS text[]) AS channels,
                  CAST(:first AS text[]) AS first, CAST(:last AS text[]) AS last,
                  CAST(:reasons AS text[]) AS reasons, CAST(:n AS bigint) AS n,
                  CAST(:dead_every AS bigint) AS dead_every, CAST(:newest AS timestamptz) AS newest,
                  CAST(:spacing AS interval) AS spacing, CAST(:id_base AS bigint) AS id_base,
                  CAST(:duplicate_every AS bigint) AS duplicate_every, CAST(:spread AS bigint) AS spread)
"""

_LEADS_BODY = """
INSERT INTO leads (channel, source, intake_key, received_at, content_type, raw_body, raw_sha256, raw_meta,
                   state, state_changed_at, lead, external_id, identity, attempts, unfinished_runs,
                   account, coworker_id, opportunity_id, opportunity_name, delivered_at)
SELECT channels[1 + g % cardinality(channels)], 'webhook', prefix || ':' || g, at,
       'application/json', convert_to(doc::text, 'UTF8'), md5(prefix || g) || md5(g || prefix), '{}'::jsonb,
       st, at, doc, 'SEED-' || prefix || '-' || g,
       'email:' || email, CASE WHEN st = 'dead' THEN 3 ELSE 1 END, 0,
       CASE WHEN st = 'delivered' THEN 'main' END,
       CASE WHEN st = 'delivered' THEN id_base + g END,
       CASE WHEN st = 'delivered' THEN id_base + g END,
       CASE WHEN st = 'delivered' THEN 'Seeded enquiry ' || g END,
       CASE WHEN st = 'delivered' THEN at + (1 + g % spread) * interval '1 second' END
FROM (
  SELECT numbered.*,
         jsonb_build_object(
           'external_id', 'SEED-' || prefix || '-' || g,
           'received_at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           'contact', jsonb_build_object(
             'full_name', first[1 + g % cardinality(first)] || ' '
                          || last[1 + (g / cardinality(first)) % cardinality(last)],
             'email', email,
             'phone', '+44207' || lpad((g % 10000000)::text, 7, '0')),
           'requirements', jsonb_build_object('desks', 1 + g % 20)) AS doc
  FROM (
    SELECT p.*, g, newest - (n - 1 - g) * spacing AS at,
           CASE WHEN dead_every > 0 AND g % dead_every = dead_every - 1 THEN 'dead'
                WHEN duplicate_every > 0 AND g % duplicate_every = 0 THEN 'duplicate'
                ELSE 'delivered' END AS st,
           prefix || '.' || g || '@example.test' AS email
    FROM p, generate_series(0, p.n - 1) AS g
  ) AS numbered
) AS made
"""

_LETTERS_BODY = """
INSERT INTO dead_letters (lead_id, reason, message, detail, status, created_at)
SELECT id,
       reasons[1 + CAST(substr(intake_key, length(prefix) + 2) AS bigint)
               / dead_every % cardinality(reasons)],
       'seeded: the lead could not be delivered', '{}'::jsonb,
       'open', received_at + interval '5 seconds'
FROM leads, p WHERE intake_key LIKE prefix || ':%' AND state = 'dead'
"""
_LEADS, _LETTERS = ("\n".join((_PARAMS, body)) for body in (_LEADS_BODY, _LETTERS_BODY))


def seed_leads(
    engine: Engine,
    n: int,
    *,
    prefix: str = "seed",
    channels: tuple[str, ...] = ("canonical", "hubblehq", "workthere"),
    dead_every: int = 50,
    duplicate_every: int = 0,
    newest: datetime | None = None,
    spacing: timedelta = timedelta(minutes=1),
    id_base: int = 900_000_000,
) -> Seeded:
    """Write ``n`` settled leads, every ``dead_every``-th one dead with an open letter."""
    plan = Plan(n, channels, dead_every, duplicate_every, newest or utcnow(), spacing)
    if engine.dialect.name != "postgresql":
        return _seed_rows(engine, plan, prefix, id_base)
    params = {
        "n": n,
        "prefix": prefix,
        "channels": list(channels),
        "dead_every": dead_every,
        "duplicate_every": duplicate_every,
        "spread": LATENCY_SPREAD,
        "newest": plan.newest,
        "spacing": spacing,
        "id_base": id_base,
        "first": list(FIRST_NAMES),
        "last": list(LAST_NAMES),
        "reasons": list(REASONS),
    }
    with engine.begin() as conn:
        conn.execute(text(_LEADS), params)
        dead = conn.execute(text(_LETTERS), params).rowcount
        first, last = conn.execute(
            text("SELECT min(id), max(id) FROM leads WHERE intake_key LIKE :prefix || ':%'"), params
        ).one()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE leads"))
        conn.execute(text("ANALYZE dead_letters"))
    return Seeded(prefix, n, int(first), int(last), int(dead), plan)


def _seed_rows(engine: Engine, plan: Plan, prefix: str, id_base: int) -> Seeded:
    """The same leads for a ledger without generate_series (the demo's SQLite), a row at a time."""
    rows = []
    for g in range(plan.n):
        at, state, email = plan.received_at(g), plan.state(g), seed_email(prefix, g)
        contact = {"full_name": seed_name(g), "email": email, "phone": seed_phone(g)}
        delivered = state == "delivered"
        rows.append(
            {
                "channel": plan.channel(g),
                "source": "webhook",
                "intake_key": f"{prefix}:{g}",
                "received_at": at,
                "content_type": "application/json",
                "raw_body": b"{}",
                "raw_sha256": f"{prefix}{g}",
                "raw_meta": {},
                "state": state,
                "state_changed_at": at,
                "lead": {"external_id": f"SEED-{prefix}-{g}", "contact": contact},
                "external_id": f"SEED-{prefix}-{g}",
                "opportunity_id": id_base + g if delivered else None,
                "delivered_at": at + timedelta(seconds=plan.seconds(g)) if delivered else None,
            }
        )
    with engine.begin() as conn:
        made = insert(Lead).returning(Lead.id, sort_by_parameter_order=True)
        ids = conn.execute(made, rows).scalars().all()
        letters = [
            {"lead_id": i, "reason": plan.reason(g), "message": "seeded", "detail": {}, "status": "open"}
            for g, i in enumerate(ids)
            if plan.state(g) == "dead"
        ]
        if letters:
            conn.execute(insert(DeadLetter), letters)
        first, last = (
            conn.execute(
                select(Lead.id).where(Lead.intake_key.like(f"{prefix}:%")).order_by(Lead.id).limit(1)
            ).scalar_one(),
            max(ids),
        )
    return Seeded(prefix, plan.n, int(first), int(last), len(letters), plan)
