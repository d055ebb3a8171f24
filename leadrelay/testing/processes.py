"""Processes for tests and bench: the environment leadrelay's start in, the sandbox in its own process.

Start a receiver, workers or beat as a ``leadrelay.children.Child`` with :func:`service_env`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from leadrelay.children import Child, free_port, wait_http

__all__ = ["RemoteSandbox", "sandbox_env", "service_env", "workers_and_beat"]


def service_env(**extra: str) -> dict[str, str]:
    """This process's environment (database, broker) plus ``extra``."""
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


def workers_and_beat(
    env: dict[str, str], logdir: Path, *, workers: int = 3, concurrency: int = 2
) -> list[Child]:
    """``workers`` Celery worker processes (prefork, ``concurrency`` slots each) and the scheduler."""
    args = ["worker", "--concurrency", str(concurrency), "--pool", "prefork"]
    procs = [Child(f"worker{n}", args, env=env, logdir=logdir) for n in range(workers)]
    procs.append(Child("beat", ["beat"], env=env, logdir=logdir))
    return procs


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
        self.proc = Child("sandbox", args, env=service_env(), logdir=logdir)
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
