"""A Zapier-style lead, token-authenticated, through `leadrelay serve` + `leadrelay worker` to Nexudus."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import yaml

from leadrelay.children import Child, free_port, wait_http
from leadrelay.testing.processes import service_env
from tests.helpers import wait_for

TOKEN = "e2e_" + "Hk2p" * 10
# what "Webhooks by Zapier" sends with Unflatten on and every value typed as text
ZAP = {
    "external_id": "typeform-8812",
    "contact": {"full_name": "Jo Zapier", "email": "jo.zapier@example.com", "phone": "07700 900123"},
    "requirements": {"desks": {"min": "4", "max": "6"}, "start_date": "2027-03-01"},
    "listing": {"id": "foundry"},
    "message": "Sent from a Zap",
}


def test_a_token_authenticated_zapier_lead_becomes_one_opportunity(
    clean_db: str, redis_broker: str, sandbox: Any, tmp_path: Path
) -> None:
    data = yaml.safe_load(resources.files("leadrelay").joinpath("default_routing.yaml").read_text())
    data["channels"]["zapier"] = {
        "lead_source": 11,
        "agent_id": 3004,
        "adapter": "canonical",
        "label": "Zapier",
        "webhook": {"scheme": "token", "token_env": "ZAPIER_TOKEN"},
    }
    routing = tmp_path / "routing.yaml"
    routing.write_text(yaml.safe_dump(data))
    env = service_env(
        LEADRELAY_CONFIG=str(routing),
        LEADRELAY_DATA_DIR=str(tmp_path),
        ZAPIER_TOKEN=TOKEN,
        NEXUDUS_BASE_URL=sandbox.base_url,
        NEXUDUS_USERNAME="sandbox@leadrelay.local",
        NEXUDUS_PASSWORD="sandbox",
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    receiver = Child("receiver", ["serve", "--port", str(port)], env=env, logdir=tmp_path)
    worker = Child("worker", ["worker", "--concurrency", "2", "--beat"], env=env, logdir=tmp_path)
    try:
        wait_http(f"{base}/healthz", receiver)
        body = json.dumps(ZAP).encode()
        headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}
        refused = httpx.post(
            f"{base}/webhooks/zapier", content=body, headers={"authorization": "Bearer " + "x" * 40}
        )
        assert refused.status_code == 401
        first = httpx.post(f"{base}/webhooks/zapier", content=body, headers=headers)
        assert first.status_code == 202, first.text
        wait_for(lambda: len(sandbox.opportunities()) == 1, timeout=60, what="the opportunity")
        [opportunity] = sandbox.opportunities()
        assert (opportunity["LeadSource"], opportunity["AgentId"]) == (11, 3004)
        assert "Zapier" in opportunity["Name"]
        assert [c["Email"] for c in sandbox.coworkers() if c["Email"] == "jo.zapier@example.com"] == [
            "jo.zapier@example.com"
        ]
        again = httpx.post(f"{base}/webhooks/zapier", content=body, headers=headers)  # a Zap re-run
        assert again.json() == {"event_id": first.json()["event_id"], "duplicate": True}
        logs = receiver.log_path.read_text() + worker.log_path.read_text()
        assert TOKEN not in logs
    finally:
        for proc in (receiver, worker):
            proc.stop()
