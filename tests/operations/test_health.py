"""`/healthz` and `/readyz` over real HTTP: what makes leadrelay not ready, how it says so, and
to whom; one computation shared by concurrent callers, off the webhook door's threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from anyio import from_thread, to_thread

from leadrelay.api import health
from leadrelay.nexudus.auth_state import record_auth
from leadrelay.runtime import Runtime
from tests.dead_letters.test_replay import settle
from tests.helpers import canonical, ingest
from tests.operations.support import ADMIN_TOKEN, age, receiver, runtime_with, swept

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_healthz_answers_while_the_process_is_up(clean_db, sandbox) -> None:
    rt = runtime_with("postgresql+psycopg://nobody@127.0.0.1:1/none", sandbox)
    try:
        with receiver(rt) as base:
            assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
            down = httpx.get(f"{base}/readyz")
            assert down.status_code == 503
            assert down.json()["problems"] == ["database"]
            detailed = httpx.get(f"{base}/readyz", headers=ADMIN)
            assert detailed.json()["problems"] == ["database: OperationalError"]
    finally:
        rt.close()


def test_ready_when_the_ledger_broker_and_backlog_are_fine(clean_db, redis_broker, sandbox) -> None:
    rt = runtime_with(clean_db, sandbox)
    try:
        ingest(rt, canonical())
        swept(rt, seconds_ago=2)
        with receiver(rt) as base:
            answer = httpx.get(f"{base}/readyz", headers=ADMIN)
            anonymous = httpx.get(f"{base}/readyz")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["status"], body["problems"]) == ("ready", [])
        assert body["checks"]["database"] == body["checks"]["broker"] == "ok"
        assert body["checks"]["open_dead_letters"] == 0
        assert body["checks"]["nexudus"] == {"main": "unknown"}
        assert body["checks"]["scheduler"]["last_sweep_by"] == "worker-1:42:cafe"
        assert 1 < body["checks"]["scheduler"]["last_sweep_seconds"] < 10
        assert anonymous.json() == {"status": "ready", "problems": [], "checks": {}}
    finally:
        rt.close()


def test_an_old_backlog_makes_it_not_ready(clean_db, redis_broker, sandbox) -> None:
    rt = runtime_with(clean_db, sandbox, ready_max_backlog_seconds=600)
    try:
        age(rt, ingest(rt, canonical()), seconds=900)
        swept(rt)
        with receiver(rt) as base:
            answer = httpx.get(f"{base}/readyz", headers=ADMIN)
        assert answer.status_code == 503
        [problem] = answer.json()["problems"]
        assert problem.startswith("backlog: the oldest undelivered lead has waited 9")
        assert "(limit 600s)" in problem
    finally:
        rt.close()


def test_too_many_open_dead_letters_make_it_not_ready(clean_db, redis_broker, sandbox) -> None:
    rt = runtime_with(clean_db, sandbox, ready_max_open_dead_letters=1)
    try:
        for n in range(2):
            lead_id = ingest(rt, canonical(external_id=f"p{n}", contact={"full_name": "nobody"}))
            assert settle(rt, lead_id) == "dead"
        swept(rt)
        with receiver(rt) as base:
            answer = httpx.get(f"{base}/readyz", headers=ADMIN)
        assert answer.status_code == 503
        assert answer.json()["problems"] == ["dead letters: 2 open (limit 1)"]
        assert answer.json()["checks"]["open_dead_letters"] == 2
    finally:
        rt.close()


def test_a_refused_nexudus_login_makes_it_not_ready_until_a_login_works(
    clean_db, redis_broker, sandbox
) -> None:
    wrong = runtime_with(clean_db, sandbox, nexudus_password="not-the-password")
    rt = runtime_with(clean_db, sandbox)
    try:
        assert not wrong.nexudus("main").check_auth().ok  # a real login, refused by the sandbox
        swept(rt)
        with receiver(rt) as base:
            refused = httpx.get(f"{base}/readyz", headers=ADMIN)
            assert refused.status_code == 503
            [problem] = refused.json()["problems"]
            assert problem.startswith("nexudus auth: account 'main' login refused: Nexudus refused the login")
            assert refused.json()["checks"]["nexudus"] == {"main": "refused"}
            assert "not-the-password" not in refused.text

            assert rt.nexudus("main").check_auth().ok
            assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        wrong.close()
        rt.close()


def test_the_readiness_thresholds_can_be_turned_off(clean_db, redis_broker, sandbox) -> None:
    rt = runtime_with(
        clean_db,
        sandbox,
        ready_max_backlog_seconds=None,
        ready_max_open_dead_letters=None,
        ready_max_scheduler_lag_seconds=None,
    )
    try:
        age(rt, ingest(rt, canonical()), days=3)
        record_auth(rt.sessions, "main", ok=True, error=None)
        with receiver(rt) as base:
            assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        rt.close()


def test_no_scheduler_sweeping_for_a_while_makes_it_not_ready(clean_db, redis_broker, sandbox) -> None:
    rt = runtime_with(clean_db, sandbox, ready_max_scheduler_lag_seconds=30)
    try:
        with receiver(rt) as base:
            never = httpx.get(f"{base}/readyz", headers=ADMIN)
            assert never.status_code == 503
            assert never.json()["problems"] == [
                "scheduler: no scheduler has swept the ledger yet (no worker, no `leadrelay beat`)"
            ]
            swept(rt, seconds_ago=95)
            lagging = httpx.get(f"{base}/readyz", headers=ADMIN)
            assert lagging.status_code == 503
            [problem] = lagging.json()["problems"]
            assert problem.startswith("scheduler: no scheduler has swept the ledger for 9")
            assert problem.endswith("(limit 30s); the last was worker-1:42:cafe")
            assert httpx.get(f"{base}/readyz").json()["problems"] == ["scheduler"]
            swept(rt)
            assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        rt.close()


def test_strangers_learn_the_kind_of_problem_but_no_names_or_nexudus_text(
    clean_db, redis_broker, sandbox
) -> None:
    rt = runtime_with(clean_db, sandbox, ready_max_backlog_seconds=600)
    try:
        record_auth(rt.sessions, "main", ok=False, error="Nexudus refused the login: invalid_grant (ops@x)")
        age(rt, ingest(rt, canonical()), seconds=900)
        swept(rt, seconds_ago=300)
        with receiver(rt) as base:
            anonymous = httpx.get(f"{base}/readyz")
            wrong = httpx.get(f"{base}/readyz", headers={"Authorization": "Bearer not-the-token"})
            admin = httpx.get(f"{base}/readyz", headers=ADMIN)
        for answer in (anonymous, wrong):
            assert answer.status_code == 503
            assert answer.json() == {
                "status": "not_ready",
                "problems": ["nexudus auth", "scheduler", "backlog"],
                "checks": {},
            }
            for secret in ("main", "invalid_grant", "ops@x", "worker-1"):
                assert secret not in answer.text
        assert admin.status_code == 503
        assert "account 'main' login refused: Nexudus refused the login: invalid_grant" in admin.text
        assert admin.json()["checks"]["nexudus"] == {"main": "refused"}
    finally:
        rt.close()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Each readiness computation: its thread, and how many default-pool threads were busy meanwhile."""
    seen: list[dict[str, Any]] = []
    real = health.readiness

    def slow_readiness(rt: Runtime) -> health.Report:
        default_busy = from_thread.run_sync(
            lambda: to_thread.current_default_thread_limiter().borrowed_tokens
        )
        seen.append({"thread": threading.current_thread().name, "default_busy": default_busy})
        time.sleep(0.5)
        return real(rt)

    monkeypatch.setattr(health, "readiness", slow_readiness)
    return seen


def test_concurrent_callers_share_one_computation_kept_a_few_seconds(
    clean_db, redis_broker, sandbox, counted
) -> None:
    rt = runtime_with(clean_db, sandbox, ready_cache_seconds=2)
    try:
        swept(rt)
        with receiver(rt) as base, ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(lambda _: httpx.get(f"{base}/readyz", timeout=10), range(24)))
            assert {answer.status_code for answer in answers} == {200}
            assert len(counted) == 1
            assert httpx.get(f"{base}/readyz").status_code == 200
            assert len(counted) == 1  # from the cache
            time.sleep(2.1)
            assert httpx.get(f"{base}/readyz").status_code == 200
            assert len(counted) == 2
    finally:
        rt.close()


def test_readiness_never_takes_a_thread_of_the_webhook_doors_pool(
    clean_db, redis_broker, sandbox, counted
) -> None:
    rt = runtime_with(clean_db, sandbox)
    try:
        swept(rt)
        with receiver(rt) as base:
            assert httpx.get(f"{base}/readyz").status_code == 200
        assert counted == [{"thread": counted[0]["thread"], "default_busy": 0}]
    finally:
        rt.close()


def test_an_unresolvable_secret_is_a_config_problem_and_the_last_check_a_detail(
    clean_db, redis_broker, sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadrelay.config_check import CheckReport, remember
    from tests.conftest import routing_with

    monkeypatch.setattr("leadrelay.config_check._last", {})
    remember(CheckReport("full", ["locations.x.business_id: 4242 is not a business"]))
    leads = {"host": "127.0.0.1", "tls": False, "username": "leads", "password_env": "UNSET_INBOX_PASSWORD"}
    rt = runtime_with(clean_db, sandbox, routing_with(inboxes={"leads": leads}))
    try:
        swept(rt, seconds_ago=1)
        with receiver(rt) as base:
            answer = httpx.get(f"{base}/readyz", headers=ADMIN)
            anonymous = httpx.get(f"{base}/readyz")
        assert answer.status_code == 503
        (problem,) = answer.json()["problems"]
        assert problem.startswith("config: inboxes.leads.password_env: environment variable UNSET_INBOX_")
        assert problem.endswith("run `leadrelay check`")
        config = answer.json()["checks"]["config"]
        assert config["light"]["ok"] is False and config["full"]["problems"] == [
            "locations.x.business_id: 4242 is not a business"
        ]
        assert time.time() - config["light"]["at"] < 60
        assert anonymous.json()["problems"] == ["config"]
    finally:
        rt.close()
    fine = runtime_with(clean_db, sandbox)
    try:
        swept(fine, seconds_ago=1)
        with receiver(fine) as base:
            body = httpx.get(f"{base}/readyz", headers=ADMIN).json()
        assert body["problems"] == [] and body["checks"]["config"]["light"]["ok"] is True
    finally:
        fine.close()
