"""Issue 14, done when: from an empty directory, against the sandbox, `leadrelay init` →
`leadrelay check` passes → `serve`, `worker` and `beat` deliver a HubbleHq mail from a real
Dovecot inbox and a Zapier-style token-authenticated lead (real processes, Postgres, Redis)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from leadrelay.children import Child, wait_http
from leadrelay.testing.dovecot import Dovecot, received
from leadrelay.testing.mails import sample
from leadrelay.testing.processes import service_env
from tests.conftest import free_port
from tests.helpers import CANONICAL, wait_for
from tests.inbox.support import inbox
from tests.setup.test_init_check import LOGIN, dotenv, leadrelay

MAIL = sample("hubblehq", "email-viewing-request.eml")


def test_init_check_then_serve_worker_beat_deliver_a_mail_and_a_token_lead(
    tmp_path: Path,
    clean_db: str,
    redis_broker: str,
    sandbox: Any,
    dovecot: Dovecot,
    folders: Callable[..., str],
) -> None:
    base = {k: v for k, v in service_env().items() if k != "LEADRELAY_ALLOW_DEMO_ROUTING"}
    base.update(LEADRELAY_DATABASE_URL=clean_db, LEADRELAY_BROKER_URL=redis_broker)
    made = leadrelay(
        "init", "--base-url", sandbox.base_url, *LOGIN,
        "-c", "hubblehq", "-c", "canonical", "--token", "canonical",
        env=base, cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    printed = dotenv(made.stdout)
    token = printed["CANONICAL_WEBHOOK_TOKEN"]
    routing_path = tmp_path / "routing.yaml"
    written = routing_path.read_text()
    assert token not in written and "scheme: token, token_env: CANONICAL_WEBHOOK_TOKEN" in written

    # the operator's next step (docs/inboxes.md): the shared inbox the portals mail
    folder = folders(received(MAIL))
    routing = yaml.safe_load(written)
    routing["inboxes"] = {"leads": inbox(dovecot, folder, poll_interval_seconds=1)}
    routing_path.write_text(yaml.safe_dump(routing))

    env = {
        **base,
        "HUBBLEHQ_WEBHOOK_SECRET": printed["HUBBLEHQ_WEBHOOK_SECRET"],
        "CANONICAL_WEBHOOK_TOKEN": token,
        "NEXUDUS_PASSWORD": "sandbox",
        "LEADRELAY_CONFIG": str(routing_path),
        "LEADRELAY_DATA_DIR": str(tmp_path),
    }
    checked = leadrelay("check", "--json", env=env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["problems"] == []

    port = free_port()
    procs = [
        Child("receiver", ["serve", "--port", str(port)], env=env, logdir=tmp_path),
        Child("worker", ["worker", "--concurrency", "2", "--no-beat"], env=env, logdir=tmp_path),
        Child("beat", ["beat"], env=env, logdir=tmp_path),
    ]
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", procs[0])
        # Zapier's "Webhooks by Zapier" POST: JSON and a bearer token, no signature
        sent = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/canonical",
            json=CANONICAL,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert sent.status_code == 202, sent.text
        refused = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/canonical",
            json=CANONICAL,
            headers={"Authorization": "Bearer " + "x" * 43},
        )
        assert refused.status_code == 401
        wait_for(lambda: len(sandbox.opportunities()) == 2, timeout=90, what="both opportunities")
    finally:
        for proc in reversed(procs):
            proc.stop()
    sources = sorted(o["LeadSource"] for o in sandbox.opportunities())
    assert sources == [11, 17]  # the token lead as Broker, the mail as HubbleHq
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
    assert token not in logs
