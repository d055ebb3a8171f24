"""A big ledger in seconds: ``seed_leads(engine, 50_000)`` for search, paging and overview tests.

One ``INSERT … SELECT generate_series`` on Postgres writes settled leads as the worker
would leave them: a canonical lead with a contact (unique e-mail and phone, names from
a small list), a portal reference, and either an opportunity (delivered) or, every
``dead_every``-th lead, an open dead letter. Times spread back from ``newest`` one
``spacing`` apart, so date filters have something to cut. ANALYZE runs at the end so
the planner sees the new rows at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, text

from leadrelay.db import utcnow

FIRST_NAMES = ("Ada", "Ben", "Chloé", "Dev", "Esther", "Farid", "Greta", "Hugo", "Ines", "Jonas")
LAST_NAMES = ("Okafor", "Lindqvist", "Moreau", "Patel", "Kowalski", "Nakamura", "O'Brien", "Silva")
REASONS = ("validation", "parse_error", "exhausted", "routing", "auth")


@dataclass(frozen=True, slots=True)
class Seeded:
    prefix: str
    count: int
    first_id: int
    last_id: int
    dead: int

    def email(self, i: int) -> str:
        """The e-mail address of the ``i``-th seeded lead (0-based)."""
        return seed_email(self.prefix, i)


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
                  CAST(:spacing AS interval) AS spacing, CAST(:id_base AS bigint) AS id_base)
"""

_LEADS_BODY = """
INSERT INTO leads (channel, source, intake_key, received_at, content_type, raw_body, raw_sha256, raw_meta,
                   state, state_changed_at, lead, external_id, identity, attempts, unfinished_runs,
                   account, coworker_id, opportunity_id, opportunity_name, delivered_at)
SELECT channels[1 + g % cardinality(channels)], 'webhook', prefix || ':' || g, at,
       'application/json', convert_to(doc::text, 'UTF8'), md5(prefix || g) || md5(g || prefix), '{}'::jsonb,
       CASE WHEN dead THEN 'dead' ELSE 'delivered' END, at, doc, 'SEED-' || prefix || '-' || g,
       'email:' || email, CASE WHEN dead THEN 3 ELSE 1 END, 0,
       CASE WHEN dead THEN NULL ELSE 'main' END,
       CASE WHEN dead THEN NULL ELSE id_base + g END,
       CASE WHEN dead THEN NULL ELSE id_base + g END,
       CASE WHEN dead THEN NULL ELSE 'Seeded enquiry ' || g END,
       CASE WHEN dead THEN NULL ELSE at + interval '2 seconds' END
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
           (dead_every > 0 AND g % dead_every = dead_every - 1) AS dead,
           prefix || '.' || g || '@example.test' AS email
    FROM p, generate_series(0, p.n - 1) AS g
  ) AS numbered
) AS made
"""

_LETTERS_BODY = """
INSERT INTO dead_letters (lead_id, reason, message, detail, status, created_at)
SELECT id, reasons[1 + id % cardinality(reasons)], 'seeded: the lead could not be delivered', '{}'::jsonb,
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
    newest: datetime | None = None,
    spacing: timedelta = timedelta(minutes=1),
    id_base: int = 900_000_000,
) -> Seeded:
    """Write ``n`` settled leads (Postgres only), every ``dead_every``-th one dead with an open letter."""
    if engine.dialect.name != "postgresql":
        raise ValueError("seed_leads writes with generate_series: it needs Postgres")
    params = {
        "n": n,
        "prefix": prefix,
        "channels": list(channels),
        "dead_every": dead_every,
        "newest": newest or utcnow(),
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
    return Seeded(prefix=prefix, count=n, first_id=int(first), last_id=int(last), dead=int(dead))
