"""`leadrelay init` → `leadrelay check` against a real sandbox over HTTP, as an operator runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadrelay.routing import load_routing
from leadrelay.sandbox.options import TenantSpec
from leadrelay.testing.processes import service_env

LOGIN = ["--username", "sandbox@leadrelay.local", "--password", "sandbox"]


def leadrelay(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadrelay.cli", *args],
        env={**env, "COLUMNS": "200"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def dotenv(output: str) -> dict[str, str]:
    """The `NAME=value` lines init printed (the .env snippet)."""
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(\S+)$", output, flags=re.M))


def test_init_then_check_from_an_empty_directory(tmp_path: Path, sandbox: Any) -> None:
    env = service_env()
    made = leadrelay(
        "init", "--base-url", sandbox.base_url, *LOGIN, "-c", "hubblehq", "-c", "kontor", "-c", "canonical",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    written = (tmp_path / "routing.yaml").read_text()
    assert "whsec_" not in written  # secrets are printed, never written into the file
    assert "TODO agent_id" in written
    snippet = dotenv(made.stdout)
    assert set(snippet) >= {"HUBBLEHQ_WEBHOOK_SECRET", "KONTOR_WEBHOOK_SECRET", "CANONICAL_WEBHOOK_SECRET"}
    assert all(snippet[k].startswith("whsec_") for k in snippet if k.endswith("_WEBHOOK_SECRET"))
    assert len({snippet[k] for k in snippet if k.endswith("_WEBHOOK_SECRET")}) == 3  # fresh, one each

    data = yaml.safe_load(written)
    assert {name: loc["board_column_id"] for name, loc in data["locations"].items()} == {
        "the_foundry": 2001,  # each business's "New enquiry" stage, not Won/Lost
        "mission_hub": 2002,
        "spree_space": 2003,
    }
    assert (
        data["locations"]["mission_hub"] | {"country": "US", "country_id": 2, "timezone_id": 12}
        == (data["locations"]["mission_hub"])
    )
    assert {name: c["lead_source"] for name, c in data["channels"].items()} == {
        "hubblehq": 17,
        "kontor": 25,
        "canonical": 11,
    }
    assert data["channels"]["hubblehq"]["webhook"] == {
        "scheme": "standard-webhooks",
        "secret_env": "HUBBLEHQ_WEBHOOK_SECRET",
    }

    run_env = {
        **env,
        **{k: v for k, v in snippet.items() if k.endswith("_WEBHOOK_SECRET")},
        "LEADRELAY_CONFIG": str(tmp_path / "routing.yaml"),
        "NEXUDUS_PASSWORD": "sandbox",
        "LEADRELAY_PUBLIC_URL": "https://leads.example.com",
    }
    checked = leadrelay("check", "--json", env=run_env, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] and report["problems"] == [] and report["accounts"] == {"main": "ok"}
    assert {c["channel"]: (c["url"], c["scheme"]) for c in report["channels"]}["kontor"] == (
        "https://leads.example.com/webhooks/kontor",
        "standard-webhooks",
    )
    # the file init wrote is one the processes load as it is
    os.environ.update(run_env)
    try:
        assert set(load_routing(tmp_path / "routing.yaml").channels) == {"hubblehq", "kontor", "canonical"}
    finally:
        for key in run_env.keys() - env.keys():
            os.environ.pop(key, None)


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, sandbox: Any) -> None:
    (tmp_path / "routing.yaml").write_text("# mine\n")
    args = ["init", "--base-url", sandbox.base_url, *LOGIN, "-c", "hubblehq"]
    refused = leadrelay(*args, env=service_env(), cwd=tmp_path)
    assert refused.returncode == 1
    assert "routing.yaml exists: pass --force" in refused.stderr
    assert (tmp_path / "routing.yaml").read_text() == "# mine\n"
    forced = leadrelay(*args, "--force", env=service_env(), cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "business_id: 1001" in (tmp_path / "routing.yaml").read_text()


def test_init_logs_in_with_a_two_factor_code(tmp_path: Path, sandbox: Any) -> None:
    sandbox.state.add_tenant(TenantSpec(username="2fa@example.com", password="pw", totp="424242"))
    base = ["init", "--base-url", sandbox.base_url, "--username", "2fa@example.com", "--password", "pw"]
    without = leadrelay(*base, "-c", "valve", env=service_env(), cwd=tmp_path)
    assert without.returncode == 1
    assert "two-factor" in without.stderr and "--totp" in without.stderr
    assert not (tmp_path / "routing.yaml").exists()
    wrong = leadrelay(*base, "-c", "valve", "--totp", "000000", env=service_env(), cwd=tmp_path)
    assert wrong.returncode == 1
    done = leadrelay(*base, "-c", "valve", "--totp", "424242", env=service_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "lead_source: 26  # Valve" in (tmp_path / "routing.yaml").read_text()


def test_init_names_the_channels_it_knows(tmp_path: Path, sandbox: Any) -> None:
    bad = leadrelay(
        "init", "--base-url", sandbox.base_url, *LOGIN, "-c", "myspace", env=service_env(), cwd=tmp_path
    )
    assert bad.returncode == 1
    assert "hubblehq" in bad.stderr and "valve" in bad.stderr and "canonical" in bad.stderr
    assert "myspace" in bad.stderr


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["beat"], ["poll"], ["dlq", "list"]])
def test_the_demo_routing_is_refused_with_a_real_database(tmp_path: Path, command: list[str]) -> None:
    env = {
        k: v
        for k, v in service_env().items()
        if k not in ("LEADRELAY_ALLOW_DEMO_ROUTING", "LEADRELAY_CONFIG")
    }
    env["LEADRELAY_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # never reached
    result = leadrelay(*command, env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "LEADRELAY_CONFIG" in lines[0] and "leadrelay init" in lines[0]
    assert "Traceback" not in result.stderr


def test_serve_stops_at_the_light_check_naming_each_key(tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(
        yaml.safe_dump(
            {
                "accounts": {"main": {"password_env": "NO_SUCH_PASSWORD_VAR"}},
                "locations": {},
                "channels": {
                    "hubblehq": {"lead_source": 17, "webhook": {"secret_env": "NO_SUCH_SECRET_VAR"}},
                },
            }
        )
    )
    result = leadrelay("serve", "--port", "1", env=service_env(LEADRELAY_CONFIG=str(routing)), cwd=tmp_path)
    assert result.returncode == 1
    assert "channels.hubblehq.webhook.secret_env: environment variable NO_SUCH_SECRET_VAR" in result.stderr
    assert "accounts.main.password_env: environment variable NO_SUCH_PASSWORD_VAR" in result.stderr


def test_check_light_reads_the_file_and_secrets_without_the_network(tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    data = yaml.safe_load((Path(__file__).parents[2] / "routing.example.yaml").read_text())
    data["accounts"]["main"]["base_url"] = "http://127.0.0.1:1"  # never called
    routing.write_text(yaml.safe_dump(data))
    env = service_env(LEADRELAY_CONFIG=str(routing), NEXUDUS_PASSWORD="x", LEADS_IMAP_PASSWORD="x")
    result = leadrelay("check", "--light", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["form"] == "light"
    assert sorted(report["problems"]) == [
        "channels.canonical.webhook.secret_env: environment variable CANONICAL_WEBHOOK_SECRET is not set",
        "channels.hubblehq.webhook.secret_env: environment variable HUBBLEHQ_WEBHOOK_SECRET is not set",
    ]
    secrets = {"CANONICAL_WEBHOOK_SECRET": "whsec_c2VjcmV0", "HUBBLEHQ_WEBHOOK_SECRET": "whsec_c2VjcmV0"}
    passed = leadrelay("check", "--light", env={**env, **secrets}, cwd=tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert "the light check found no problem" in passed.stdout
