"""Real leadrelay processes (receiver, workers, beat) for end-to-end and chaos tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, func, select

from leadrelay.children import Child as Proc
from leadrelay.children import free_port, wait_http
from leadrelay.models import TERMINAL_STATES, Lead
from tests.conftest import routing_with

__all__ = [
    "Proc",
    "RemoteSandbox",
    "routing_file",
    "sandbox_env",
    "service_env",
    "unsettled",
    "wait_http",
]


def service_env(**extra: str) -> dict[str, str]:
    """The test process's environment (database, broker) plus ``extra``."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


def sandbox_env(tmp_path: Path, nexudus_url: str, routing: Path, **extra: str) -> dict[str, str]:
    """:func:`service_env` for processes using ``routing`` and a sandbox's default login."""
    return service_env(
        LEADRELAY_CONFIG=str(routing),
        LEADRELAY_DATA_DIR=str(tmp_path),
        NEXUDUS_BASE_URL=nexudus_url,
        NEXUDUS_USERNAME="sandbox@leadrelay.local",
        NEXUDUS_PASSWORD="sandbox",
        **extra,
    )


def routing_file(tmp_path: Path, *, limits: dict[str, Any], secret: str | None = None) -> Path:
    """The embedded routing, the main account with ``limits``, every webhook signed with ``secret``."""
    data = routing_with(accounts={"main": {"limits": limits}}).model_dump(mode="json", exclude_none=True)
    if secret is not None:
        for channel in data["channels"].values():
            channel["webhook"] = {"scheme": "standard-webhooks", "secret": secret}
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def unsettled(url: str) -> int:
    """Leads not yet in a final state (-1 while the database cannot be read, e.g. restarting)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(Lead)
                    .where(Lead.state.not_in([state.value for state in TERMINAL_STATES]))
                ).scalar_one()
            )
    except Exception:
        return -1
    finally:
        engine.dispose()


class RemoteSandbox:
    """`leadrelay sandbox` in its own process (no GIL shared with the test), driven over /_sandbox."""

    def __init__(self, logdir: Path, *, speed: float = 1.0, limits: bool = True) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        args = [
            "sandbox",
            "--port",
            str(port),
            "--speed",
            str(speed),
            "--limits" if limits else "--no-limits",
        ]
        self.proc = Proc("sandbox", args, env=service_env(), logdir=logdir)
        wait_http(f"{self.base_url}/_sandbox/state", self.proc)
        self.http = httpx.Client(base_url=self.base_url, timeout=30)

    def stop(self) -> None:
        self.http.close()
        self.proc.stop()

    def _tenant(self, tenant: str | None) -> dict[str, Any]:
        state = self.http.get("/_sandbox/state", params={"tenant": tenant} if tenant else None).json()
        return (
            next(iter(state["tenants"].values())) if tenant else state["tenants"]["sandbox@leadrelay.local"]
        )

    def add_tenant(self, username: str, password: str) -> None:
        self.http.post(
            "/_sandbox/tenants", json={"username": username, "password": password}
        ).raise_for_status()

    def opportunities(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return list(self._tenant(tenant)["opportunities"])

    def coworkers(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return list(self._tenant(tenant)["coworkers"])

    def throttled(self, tenant: str | None = None) -> int:
        return int(self._tenant(tenant)["counters"]["throttled"])

    def requests(self, tenant: str | None = None) -> list[dict[str, Any]]:
        params = {"tenant": tenant} if tenant else None
        return list(self.http.get("/_sandbox/requests", params=params).json()["requests"])

    def add_fault(self, action: str, **rule: Any) -> None:
        self.http.post("/_sandbox/faults", json={"action": action, **rule}).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_sandbox/faults").raise_for_status()
