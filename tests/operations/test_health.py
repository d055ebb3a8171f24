"""`/healthz` and `/readyz` over real HTTP: what makes leadrelay not ready, and how it says so."""

from __future__ import annotations

import httpx

from leadrelay.nexudus.auth_state import record_auth
from tests.dead_letters.test_replay import settle
from tests.helpers import canonical, ingest
from tests.operations.support import age, receiver, runtime_with


def test_healthz_answers_while_the_process_is_up(clean_db, sandbox) -> None:
    rt = runtime_with("postgresql+psycopg://nobody@127.0.0.1:1/none", sandbox)
    try:
        with receiver(rt) as base:
            assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
            down = httpx.get(f"{base}/readyz")
            assert down.status_code == 503
            assert down.json()["problems"] == ["database: OperationalError"]
    finally:
        rt.close()


def test_ready_when_the_ledger_broker_and_backlog_are_fine(clean_db, redis_broker, sandbox) -> None:
    rt = runtime_with(clean_db, sandbox)
    try:
        ingest(rt, canonical())
        with receiver(rt) as base:
            answer = httpx.get(f"{base}/readyz")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["status"], body["problems"]) == ("ready", [])
        assert body["checks"]["database"] == body["checks"]["broker"] == "ok"
        assert body["checks"]["open_dead_letters"] == 0
        assert body["checks"]["nexudus"] == {"main": "unknown"}
    finally:
        rt.close()


def test_an_old_backlog_makes_it_not_ready(clean_db, redis_broker, sandbox) -> None:
    rt = runtime_with(clean_db, sandbox, ready_max_backlog_seconds=600)
    try:
        age(rt, ingest(rt, canonical()), seconds=900)
        with receiver(rt) as base:
            answer = httpx.get(f"{base}/readyz")
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
        with receiver(rt) as base:
            answer = httpx.get(f"{base}/readyz")
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
        with receiver(rt) as base:
            refused = httpx.get(f"{base}/readyz")
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
    rt = runtime_with(clean_db, sandbox, ready_max_backlog_seconds=None, ready_max_open_dead_letters=None)
    try:
        age(rt, ingest(rt, canonical()), days=3)
        record_auth(rt.sessions, "main", ok=True, error=None)
        with receiver(rt) as base:
            assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        rt.close()
