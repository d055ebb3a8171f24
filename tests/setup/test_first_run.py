"""From an empty directory: `leadrelay init` → `leadrelay check` → `serve` + `worker` deliver a lead,
with real processes, Postgres, Redis and the sandbox over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from leadrelay.children import Child, wait_http
from leadrelay.testing.processes import service_env
from tests.conftest import free_port
from tests.helpers import CANONICAL, wait_for
from tests.intake.test_webhooks import signed
from tests.setup.test_init_check import LOGIN, dotenv, leadrelay


def test_init_check_serve_deliver(tmp_path: Path, clean_db: str, redis_broker: str, sandbox: Any) -> None:
    base = {k: v for k, v in service_env().items() if k != "LEADRELAY_ALLOW_DEMO_ROUTING"}
    made = leadrelay(
        "init", "--base-url", sandbox.base_url, *LOGIN, "-c", "canonical", env=base, cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    secret = dotenv(made.stdout)["CANONICAL_WEBHOOK_SECRET"]
    env = {
        **base,
        "CANONICAL_WEBHOOK_SECRET": secret,
        "NEXUDUS_PASSWORD": "sandbox",
        "LEADRELAY_CONFIG": str(tmp_path / "routing.yaml"),
        "LEADRELAY_DATA_DIR": str(tmp_path),
    }
    checked = leadrelay("check", env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    port = free_port()
    receiver = Child("receiver", ["serve", "--port", str(port)], env=env, logdir=tmp_path)
    worker = Child("worker", ["worker", "--concurrency", "2", "--beat"], env=env, logdir=tmp_path)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", receiver)
        body = json.dumps(CANONICAL).encode()
        sent = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/canonical", content=body, headers=signed(secret, body)
        )
        assert sent.status_code == 202, sent.text
        wait_for(lambda: len(sandbox.opportunities()) == 1, timeout=60, what="the opportunity")
    finally:
        for proc in (receiver, worker):
            proc.stop()
    [opportunity] = sandbox.opportunities()
    # the default location init chose (The Foundry) and its "New enquiry" column; no agent yet (a TODO)
    assert (opportunity["LeadSource"], opportunity["CrmBoardColumnId"]) == (11, 2001)
    assert opportunity.get("AgentId") is None
