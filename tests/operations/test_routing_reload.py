"""Routing reload without restart: SIGHUP and the watched file, validated before it replaces the old one."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from leadrelay.children import Child, free_port, wait_http
from leadrelay.metrics import ROUTING_RELOADS
from leadrelay.routing import load_routing
from leadrelay.runtime import Runtime, current_runtime, reset_runtime
from leadrelay.testing.processes import service_env
from tests.conftest import make_settings
from tests.helpers import CANONICAL, wait_for
from tests.intake.test_webhooks import signed

TOKEN = "reload_" + "Zq8x" * 10
BODY = json.dumps(
    {"external_id": "f-1", "contact": {"full_name": "Ana Ruiz", "email": "ana@example.com"}}
).encode()
ZAPIER = {
    "lead_source": 11,
    "agent_id": 3004,
    "adapter": "canonical",
    "webhook": {"scheme": "token", "token_env": "RELOAD_TOKEN"},
}


def embedded() -> dict[str, Any]:
    return dict(yaml.safe_load(resources.files("leadrelay").joinpath("default_routing.yaml").read_text()))


def write(path: Path, data: dict[str, Any] | str) -> None:
    text = data if isinstance(data, str) else yaml.safe_dump(data)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # as an editor or a ConfigMap does: the new file whole, never half


def with_zapier() -> dict[str, Any]:
    data = embedded()
    data["channels"]["zapier"] = copy.deepcopy(ZAPIER)
    return data


def broken() -> dict[str, Any]:
    data = with_zapier()
    data["channels"]["zapier"]["lead_source"] = 999
    data["channels"]["canonical"]["colour"] = "blue"
    return data


def zap(base: str, channel: str = "zapier") -> httpx.Response:
    headers = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}
    return httpx.post(f"{base}/webhooks/{channel}", content=BODY, headers=headers, timeout=10)


@pytest.fixture
def file_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RELOAD_TOKEN", TOKEN)
    path = tmp_path / "routing.yaml"
    write(path, embedded())
    settings = make_settings(
        config=path,
        database_url=f"sqlite:///{tmp_path / 'l.db'}",
        nexudus_username="ops@example.com",
        nexudus_password="pw",
    )
    rt = Runtime.load(settings)
    yield rt, path
    rt.close()


def test_a_changed_file_is_reloaded_and_an_unchanged_one_costs_a_stat(file_runtime: Any) -> None:
    rt, path = file_runtime
    assert rt.refresh_routing().outcome == "unchanged"
    write(path, with_zapier())
    assert rt.refresh_routing().outcome == "reloaded"
    assert "zapier" in rt.routing.channels
    assert rt.refresh_routing().outcome == "unchanged"
    path.touch()  # a new mtime, the same content
    assert rt.refresh_routing().outcome == "unchanged"
    assert rt.refresh_routing(force=True).outcome == "reloaded"  # SIGHUP reads it whatever the stamp


def test_a_broken_file_keeps_the_old_routing_and_says_why_once(
    file_runtime: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    rt, path = file_runtime
    before = rt.routing
    refusals = ROUTING_RELOADS.labels(outcome="refused")._value.get()
    write(path, broken())
    result = rt.refresh_routing()
    assert result.outcome == "refused"
    assert ROUTING_RELOADS.labels(outcome="refused")._value.get() == refusals + 1
    assert rt.routing is before
    assert any(
        p.startswith("channels.zapier.lead_source: 999 is not a Nexudus LeadSource") for p in result.problems
    )
    assert any(p.startswith("channels.canonical.colour") for p in result.problems)
    assert rt.refresh_routing().outcome == "unchanged"  # said once per change, not at every look
    write(path, "channels: [unclosed")
    assert rt.refresh_routing().problems[0].startswith("not valid YAML")
    path.unlink()
    assert rt.refresh_routing(force=True).problems[0].startswith("cannot read the routing file")
    assert rt.routing is before


def test_a_secret_that_does_not_resolve_keeps_the_old_routing(
    file_runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, path = file_runtime
    monkeypatch.delenv("RELOAD_TOKEN")
    write(path, with_zapier())
    result = rt.refresh_routing()
    assert result.outcome == "refused"
    assert result.problems == [
        "channels.zapier.webhook.token_env: environment variable RELOAD_TOKEN is not set"
    ]
    assert "zapier" not in rt.routing.channels


def test_a_worker_needs_the_nexudus_logins_to_resolve_the_receiver_does_not(file_runtime: Any) -> None:
    rt, path = file_runtime
    data = with_zapier()
    data["accounts"]["main"]["password_env"] = "NO_SUCH_VARIABLE"
    write(path, data)
    result = rt.refresh_routing()
    assert result.problems == ["accounts.main.password_env: environment variable NO_SUCH_VARIABLE is not set"]
    assert rt.refresh_routing(force=True, logins=False).outcome == "reloaded"


def test_a_celery_process_looks_at_the_file_before_each_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadrelay.worker.routing_reload import _look_before_each_task

    monkeypatch.setenv("RELOAD_TOKEN", TOKEN)
    path = tmp_path / "routing.yaml"
    write(path, embedded())
    monkeypatch.setenv("LEADRELAY_CONFIG", str(path))
    monkeypatch.setenv("LEADRELAY_DATABASE_URL", f"sqlite:///{tmp_path / 'l.db'}")
    monkeypatch.setenv("NEXUDUS_USERNAME", "ops@example.com")
    monkeypatch.setenv("NEXUDUS_PASSWORD", "pw")
    from leadrelay.settings import get_settings

    get_settings.cache_clear()
    reset_runtime()
    try:
        rt = current_runtime()
        assert "zapier" not in rt.routing.channels
        write(path, with_zapier())
        _look_before_each_task()  # what Celery's task_prerun runs in every pool process
        assert current_runtime() is rt
        assert "zapier" in rt.routing.channels
    finally:
        reset_runtime()
        get_settings.cache_clear()


@contextlib.contextmanager
def receiver_on(tmp_path: Path, *, watch_seconds: str, **extra: str) -> Iterator[tuple[Child, str, Path]]:
    """`leadrelay serve` in its own process, on the embedded routing copied to a file."""
    path = tmp_path / "routing.yaml"
    write(path, embedded())
    env = service_env(
        LEADRELAY_CONFIG=str(path),
        LEADRELAY_DATA_DIR=str(tmp_path),
        RELOAD_TOKEN=TOKEN,
        LEADRELAY_ROUTING_WATCH_SECONDS=watch_seconds,
        **extra,
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    receiver = Child("receiver", ["serve", "--port", str(port)], env=env, logdir=tmp_path)
    try:
        wait_http(f"{base}/healthz", receiver)
        yield receiver, base, path
    finally:
        receiver.stop()


@pytest.mark.services
def test_a_real_receiver_gets_a_new_channel_on_sighup_and_keeps_it_through_a_broken_file(
    clean_db: str, redis_broker: str, tmp_path: Path
) -> None:
    with receiver_on(tmp_path, watch_seconds="0") as (receiver, base, path):  # SIGHUP only
        assert zap(base).status_code == 404
        write(path, with_zapier())
        receiver.kill(signal.SIGHUP)
        wait_for(lambda: zap(base).status_code == 202, timeout=15, what="the new channel after SIGHUP")

        write(path, broken())
        receiver.kill(signal.SIGHUP)
        wait_for(
            lambda: "routing_kept" in receiver.log_path.read_text(), timeout=15, what="the refusal logged"
        )
        assert receiver.alive
        again = zap(base)
        assert again.status_code == 202 and again.json()["duplicate"] is True  # the old routing answers
        log = receiver.log_path.read_text()
        refused = [json.loads(line) for line in log.splitlines() if "routing_reload_refused" in line]
        assert {r["problem"].split(":")[0] for r in refused} >= {
            "channels.zapier.lead_source",
            "channels.canonical.colour",
        }
        assert TOKEN not in log


@pytest.mark.services
def test_a_real_receiver_notices_the_file_change_without_a_signal(
    clean_db: str, redis_broker: str, tmp_path: Path
) -> None:
    with receiver_on(tmp_path, watch_seconds="0.2") as (_receiver, base, path):
        assert zap(base).status_code == 404
        write(path, with_zapier())
        wait_for(lambda: zap(base).status_code == 202, timeout=15, what="the new channel from the watch")


@pytest.mark.services
def test_a_prefork_worker_delivers_a_lead_of_a_channel_added_after_it_started(
    clean_db: str, redis_broker: str, sandbox: Any, tmp_path: Path
) -> None:
    env = {
        "NEXUDUS_BASE_URL": sandbox.base_url,
        "NEXUDUS_USERNAME": "sandbox@leadrelay.local",
        "NEXUDUS_PASSWORD": "sandbox",
    }
    with receiver_on(tmp_path, watch_seconds="0.2", **env) as (_receiver, base, path):
        worker = Child(
            "worker",
            ["worker", "--pool", "prefork", "--concurrency", "1", "--beat"],  # one child, kept
            env=service_env(
                LEADRELAY_CONFIG=str(path), LEADRELAY_DATA_DIR=str(tmp_path), RELOAD_TOKEN=TOKEN, **env
            ),
            logdir=tmp_path,
        )
        try:
            # the child builds its runtime at its first task: one first, on the routing it started with
            body = json.dumps(CANONICAL).encode()
            secret = load_routing(None).channels["canonical"].webhook.secret.get_secret_value()  # type: ignore[union-attr]
            assert (
                httpx.post(
                    f"{base}/webhooks/canonical", content=body, headers=signed(secret, body)
                ).status_code
                == 202
            )
            wait_for(lambda: len(sandbox.opportunities()) == 1, timeout=60, what="the first opportunity")
            write(path, with_zapier())
            wait_for(lambda: zap(base).status_code == 202, timeout=15, what="the new channel at the door")
            wait_for(
                lambda: len(sandbox.opportunities()) == 2, timeout=60, what="the zapier lead's opportunity"
            )
            emails = [c["Email"] for c in sandbox.coworkers()]
            assert emails.count("ana@example.com") == 1  # the zapier lead, parsed by the reloaded child
        finally:
            worker.stop()
