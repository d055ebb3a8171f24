"""4. Dedup at scale: the dedupe decision with 10k leads in the ledger, then with 1M.

The ledger is seeded with set-based SQL (``INSERT … SELECT … generate_series``):
delivered leads, each with its identity, location, company key and both dedupe
keys (portal reference and content fingerprint), as the pipeline leaves them.
The decision timed is the worker's whole normalise step for one lead — read it,
claim its keys, record the verdict, look for possible duplicates — in its own
transaction with a durable commit, for a mix of new leads and repeats of a seeded
portal reference. The same leads are decided at both sizes.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from bench import env, ledger, signed
from bench.results import Row, Run, at_most
from leadrelay.db import make_engine, make_session_factory, transaction
from leadrelay.routing import load_routing
from leadrelay.worker.normalise import normalise

SECTION = "4. Dedup at scale"

_SEED_LEADS = """
INSERT INTO leads (channel, source, intake_key, received_at, content_type, raw_body, raw_sha256, raw_meta,
                   state, state_changed_at, lead, external_id, fingerprint, identity, location, account,
                   company_key, attempts, delivered_at, opportunity_id)
SELECT 'canonical', 'webhook', 'seed:' || n, now() - (n || ' seconds')::interval, 'application/json',
       convert_to('{"seed": ' || n || '}', 'UTF8'), md5(n::text) || md5((-n)::text), '{}'::jsonb,
       'delivered', now(), jsonb_build_object('contact', jsonb_build_object('full_name', 'Seed ' || n)),
       'seed-' || n, md5(n::text) || md5((n + 1)::text), 'email:seed.' || n || '@firm' || n || '.example',
       'foundry', 'main', 'firm seed ' || n, 1, now(), n
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n
"""

_SEED_KEYS = """
INSERT INTO dedupe_keys (key, lead_id, created_at)
SELECT 'ref:canonical:' || external_id, id, now() FROM leads
WHERE intake_key LIKE 'seed:%' AND id > :after
UNION ALL
SELECT 'content:canonical:' || fingerprint, id, now() FROM leads
WHERE intake_key LIKE 'seed:%' AND id > :after
"""


@dataclass(frozen=True)
class Sizes:
    small: int = 10_000
    large: int = 1_000_000
    decisions: int = 400


def seed(url: str, upto: int, *, have: int) -> float:
    """Grow the seeded ledger from ``have`` to ``upto`` leads; seconds taken."""
    engine = make_engine(url)
    started = time.monotonic()
    with engine.begin() as conn:
        after = conn.execute(text("SELECT coalesce(max(id), 0) FROM leads")).scalar_one()
        conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        conn.execute(text(_SEED_LEADS), {"first": have + 1, "last": upto})
        conn.execute(text(_SEED_KEYS), {"after": after})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE leads"))
        conn.execute(text("VACUUM ANALYZE dedupe_keys"))
    engine.dispose()
    return time.monotonic() - started


def _bodies(count: int, *, seeded: int, tag: str) -> list[dict]:
    """Half new enquiries, half repeats of a seeded portal reference (the duplicate path)."""
    rng = random.Random(tag)
    bodies = []
    for n in range(count):
        body = signed.lead(n, tag=tag)
        if n % 2:
            body["external_id"] = f"seed-{rng.randint(1, seeded)}"
        bodies.append(body)
    return bodies


def decide(url: str, routing_path: Path, bodies: list[dict]) -> list[float]:
    """Milliseconds per dedupe decision (normalise + commit), one lead at a time."""
    ids = ledger.ingest(url, bodies)
    routing = load_routing(routing_path)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    timings = []
    try:
        for lead_id in ids:
            started = time.perf_counter()
            with transaction(sessions) as session:
                normalise(session, lead_id, routing=routing)
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        engine.dispose()
    return sorted(timings)


def bench_dedupe(run: Run, work: Path, sizes: Sizes) -> None:
    print(f"\n== {SECTION}", flush=True)
    url = env.fresh_database(env.DB_NAME)
    routing_path = env.routing_file(work / "routing.yaml", limits=env.UNLIMITED)
    env.use_env(env.service_env(url, routing_path, work))

    seeded_small = seed(url, sizes.small, have=0)
    small = decide(url, routing_path, _bodies(sizes.decisions, seeded=sizes.small, tag="d10k"))
    seeded_large = seed(url, sizes.large, have=sizes.small)
    large = decide(url, routing_path, _bodies(sizes.decisions, seeded=sizes.small, tag="d1m"))
    rows = ledger.count(url)
    env.drop_database(env.DB_NAME)

    p50_small, p50_large = ledger.percentile(small, 50), ledger.percentile(large, 50)
    run.add(
        Row(
            SECTION,
            f"p50 dedupe decision with {rows:,} leads in the ledger ({len(large)} decisions)",
            p50_large,
            "ms",
            baseline=f"the same with {sizes.small:,} leads",
            baseline_value=p50_small,
            target="ratio ≤ 1.5",
            met=at_most(p50_large / p50_small, 1.5),
            note=(
                f"p99 {ledger.percentile(large, 99):.2f} ms vs {ledger.percentile(small, 99):.2f} ms;"
                f" seeding took {seeded_small:.1f} s + {seeded_large:.1f} s (INSERT … SELECT generate_series)"
            ),
        )
    )
