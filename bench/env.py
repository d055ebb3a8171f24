"""The bench's own services: a scratch database, a Redis database, routing files, real processes.

Everything runs on this machine's PostgreSQL and Redis, in databases of its own
(``leadrelay_bench*`` and Redis database 0, which the tests never use), so a
bench run and a test run do not disturb each other's data — only each other's
CPU, which the report notes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text

import leadrelay
from leadrelay.children import Child, free_port, wait_http
from leadrelay.runtime import SANDBOX_PASSWORD, SANDBOX_USERNAME
from leadrelay.testing.processes import RemoteSandbox

PG_ADMIN_URL = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")
DB_NAME = os.environ.get("BENCH_DB", "leadrelay_bench")  # another name lets a second bench run beside
SECOND_TENANT = ("second@leadrelay.local", "second-password")

# Limits that never hold leadrelay back (the sandbox's are off too): what the
# pipeline can do by itself. The budget bench uses the documented defaults.
UNLIMITED = {
    "min_interval_ms": 0,
    "requests_per_minute": 1_000_000,
    "requests_per_hour": 10_000_000,
    "requests_per_day": 100_000_000,
    "writes_per_minute": 1_000_000,
    "writes_per_day": 100_000_000,
    "concurrent_deliveries": 16,
}


def measured_code() -> str:
    """The checkout this process (and the children it starts) runs leadrelay from, and its commit.

    ``python -m`` puts the working directory first on ``sys.path``, before
    ``PYTHONPATH``: a before/after pair runs each side from its own checkout's
    directory, and this line says which code a run measured.
    """
    root = Path(leadrelay.__file__).resolve().parents[1]
    try:
        described = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        described = ""
    return f"{root} ({described or 'not a git checkout'})"


def db_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def libpq_url(url: str) -> str:
    """The same database as a libpq URL (psql, pgbench, psycopg)."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def fresh_database(name: str) -> str:
    """Drop and create ``name``, migrate it to head; its SQLAlchemy URL."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    from leadrelay.schema import upgrade

    url = db_url(name)
    upgrade(url)
    return url


def drop_database(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def routing_file(path: Path, *, limits: dict[str, Any], second_account: bool = False) -> Path:
    """The embedded routing (its channels and webhook secrets) with the bench's accounts."""
    data = yaml.safe_load(resources.files("leadrelay").joinpath("default_routing.yaml").read_text())
    data["accounts"] = {"main": {"limits": limits}}
    if second_account:
        data["accounts"]["second"] = {
            "username": SECOND_TENANT[0],
            "password": SECOND_TENANT[1],
            "limits": limits,
        }
        data["locations"]["annex"] = {
            **data["locations"]["foundry"],
            "account": "second",
            "listings": {"canonical": ["annex"]},
        }
    path.write_text(yaml.safe_dump(data))
    return path


def service_env(database_url: str, routing: Path, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of every leadrelay process the bench starts."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LEADRELAY_DATABASE_URL": database_url,
        "LEADRELAY_BROKER_URL": REDIS_URL,
        "LEADRELAY_CONFIG": str(routing),
        "LEADRELAY_DATA_DIR": str(workdir),
        "NEXUDUS_USERNAME": SANDBOX_USERNAME,
        "NEXUDUS_PASSWORD": SANDBOX_PASSWORD,
        **extra,
    }
    return env


def use_env(env: dict[str, str]) -> None:
    """Make this process talk to the same ledger and broker as its children."""
    from leadrelay.settings import get_settings

    os.environ.update({k: v for k, v in env.items() if k.startswith(("LEADRELAY_", "NEXUDUS_"))})
    get_settings.cache_clear()


def sandbox(workdir: Path, *, limits: bool, speed: float = 1.0) -> RemoteSandbox:
    """``leadrelay sandbox`` in its own process, with the tests' client for its control API."""
    return RemoteSandbox(workdir, speed=speed, limits=limits)


def unlimited_delivery(work: Path) -> tuple[str, RemoteSandbox, Path, dict[str, str]]:
    """A fresh ledger, the sandbox with limits off, routing without limits; this process uses them."""
    url = fresh_database(DB_NAME)
    flush_redis()
    box = sandbox(work, limits=False)
    routing_path = routing_file(work / "routing.yaml", limits=UNLIMITED)
    service = service_env(url, routing_path, work, NEXUDUS_BASE_URL=box.base_url)
    use_env(service)
    return url, box, routing_path, service


@contextmanager
def processes(*children: Child) -> Iterator[tuple[Child, ...]]:
    try:
        yield children
    finally:
        for child in children:
            child.stop()


def receiver(env: dict[str, str], workdir: Path, *, workers: int) -> tuple[Child, str]:
    port = free_port()
    child = Child(
        "receiver",
        ["serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        logdir=workdir,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", child, timeout=60)
    return child, base


def worker(env: dict[str, str], workdir: Path, name: str = "worker", *, concurrency: int = 2) -> Child:
    return Child(
        name, ["worker", "--concurrency", str(concurrency), "--pool", "prefork"], env=env, logdir=workdir
    )


def beat(env: dict[str, str], workdir: Path) -> Child:
    return Child("beat", ["beat"], env=env, logdir=workdir)
