"""Shared fixtures: the real Postgres, Redis and the Nexudus sandbox on this machine.

The environment is set before anything reads it, so every process the tests
start (receivers, workers) talks to the same test database and broker.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

PG_ADMIN_URL = os.environ.get("LEADRELAY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
# One database and one Redis database per test session, so that test runs on the
# same machine (CI, a developer, a second checkout) never disturb each other.
TEST_DB = f"leadrelay_test_{os.getpid()}"
PG_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{TEST_DB}"
REDIS_URL = os.environ.get("LEADRELAY_TEST_REDIS", f"redis://127.0.0.1:6379/{1 + os.getpid() % 15}")
RABBIT_URL = os.environ.get("LEADRELAY_TEST_RABBIT", "amqp://guest:guest@127.0.0.1:5672//")
REPO = Path(__file__).resolve().parents[1]

os.environ.update(
    {
        "LEADRELAY_DATABASE_URL": PG_URL,
        "LEADRELAY_BROKER_URL": REDIS_URL,
        "LEADRELAY_REQUEUE_AFTER_SECONDS": "5",
        "LEADRELAY_SWEEP_INTERVAL_SECONDS": "0.5",
        "LEADRELAY_RETRY_SCHEDULE": "0,1,1,1",
        "LEADRELAY_RETRY_JITTER": "0",
        # an unanswered create is given no extra time to land beyond its deadline
        # (the tests that are about late landings set their own)
        "LEADRELAY_WRITE_LANDING_SECONDS": "0",
        # the tests use the embedded demo routing with a Postgres ledger (its refusal has its own test)
        "LEADRELAY_ALLOW_DEMO_ROUTING": "1",
    }
)
for var in ("LEADRELAY_CONFIG", "NEXUDUS_BASE_URL", "NEXUDUS_USERNAME", "NEXUDUS_PASSWORD"):
    os.environ.pop(var, None)

from sqlalchemy import create_engine, text  # noqa: E402

from leadrelay.children import free_port  # noqa: E402
from leadrelay.db import Base  # noqa: E402
from leadrelay.routing import Routing, parse_routing  # noqa: E402
from leadrelay.runtime import SANDBOX_PASSWORD, SANDBOX_USERNAME, Runtime  # noqa: E402
from leadrelay.settings import Settings, get_settings  # noqa: E402


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated test database on the real Postgres."""
    if not _reachable("127.0.0.1", 5432):
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (bash .ci/run starts it)")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {TEST_DB}"))
    admin.dispose()
    from leadrelay.schema import upgrade

    upgrade(PG_URL)
    yield PG_URL
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {TEST_DB} WITH (FORCE)"))
    admin.dispose()


def truncate_all(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def clean_db(pg_url: str) -> str:
    truncate_all(pg_url)
    return pg_url


def fresh_ledger(request: pytest.FixtureRequest, tmp_path: Path, database: str) -> str:
    """The URL of a fresh, migrated ledger: ``sqlite`` (a file in ``tmp_path``) or ``postgres``."""
    if database == "sqlite":
        from leadrelay.schema import upgrade

        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        upgrade(url)
        return url
    return str(request.getfixturevalue("clean_db"))


@pytest.fixture
def redis_broker() -> str:
    if not _reachable("127.0.0.1", 6379):
        pytest.fail("Redis is not running on 127.0.0.1:6379 (bash .ci/run starts it)")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


@pytest.fixture
def rabbit_broker() -> str:
    if not _reachable("127.0.0.1", 5672):
        pytest.fail("RabbitMQ is not running on 127.0.0.1:5672 (bash .ci/run starts it)")
    return RABBIT_URL


# Account limits that never hold a test back (the budget has its own tests).
UNTHROTTLED = {
    "min_interval_ms": 0,
    "requests_per_minute": 1_000_000,
    "requests_per_hour": 10_000_000,
    "writes_per_minute": 1_000_000,
    "writes_per_day": 10_000_000,
    "concurrent_deliveries": 16,
}
OPEN_BUDGET = {"main": {"limits": UNTHROTTLED}}


def routing_with(**changes: object) -> Routing:
    """The embedded routing with top-level sections replaced (dicts are merged one level deep)."""
    from importlib import resources

    import yaml

    data = yaml.safe_load(resources.files("leadrelay").joinpath("default_routing.yaml").read_text())
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_routing(data, "test routing")


def routing_file(tmp_path: Path, *, limits: dict[str, Any], secret: str | None = None) -> Path:
    """The embedded routing, the main account with ``limits``, every webhook signed with ``secret``."""
    import yaml

    data = routing_with(accounts={"main": {"limits": limits}}).model_dump(mode="json", exclude_none=True)
    if secret is not None:
        for channel in data["channels"].values():
            channel["webhook"] = {"scheme": "standard-webhooks", "secret": secret}
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="session")
def routing() -> Routing:
    """The embedded routing, with the account budget opened up (throttling has its own tests)."""
    return routing_with(accounts=OPEN_BUDGET)


@pytest.fixture
def sandbox() -> Iterator[object]:
    """A Nexudus sandbox over real HTTP, limits off unless a test turns them on."""
    from leadrelay.sandbox import running_sandbox

    with running_sandbox(limits_enabled=False) as handle:
        yield handle


def make_settings(**overrides: object) -> Settings:
    base = get_settings().model_dump()
    base.update(overrides)
    return Settings(**base)


def sandbox_settings(url: str, sandbox: Any, **overrides: object) -> Settings:
    """A worker's settings on the ledger at ``url``, logged in to the sandbox (2 s calls)."""
    return make_settings(
        **{
            "database_url": url,
            "nexudus_base_url": sandbox.base_url,
            "nexudus_username": SANDBOX_USERNAME,
            "nexudus_password": SANDBOX_PASSWORD,
            "nexudus_timeout": 2.0,
            **overrides,
        }
    )


@pytest.fixture
def runtime(clean_db: str, routing: Routing, sandbox: object) -> Iterator[Runtime]:
    """A worker's runtime on the test database, talking to the sandbox."""
    rt = Runtime.load(sandbox_settings(clean_db, sandbox, budget_wait_seconds=1.0), routing)
    yield rt
    rt.close()


class ThreadedServer:
    """An ASGI app served over real HTTP by uvicorn in a background thread."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# ---- the fast tier: pytest -m "not services" ------------------------------------------
# Every test that needs something running besides itself is marked `services`: a test
# database or broker (PostgreSQL, Redis, RabbitMQ), Dovecot, Chromium, a Nexudus sandbox
# or other server over HTTP, processes of its own (the CLI, receivers, workers), or a
# quiet machine (timings). Found by the fixtures a test uses (their dependencies
# included), by a parameter that names a service, and by the folders and files that need
# them throughout. What is left, adapters, parsing and pure logic (on SQLite where it
# needs a ledger), runs in seconds with nothing started: bash .ci/run -m "not services".
SERVICE_FIXTURES = frozenset(
    {
        "pg_url",  # clean_db, runtime, receiver, make_runtime all stand on these
        "redis_broker",
        "rabbit_broker",
        "sandbox",
        "sandbox_server",
        "dovecot",
        "auth_server",
    }
)
SERVICE_PARAMS = frozenset({"postgres", "postgresql", "redis", "rabbitmq"})
SERVICE_PATHS = (
    "chaos/",  # kills and restarts the services themselves
    "inbox/",  # a real Dovecot and an OAuth2 server
    "admin/",  # a receiver over HTTP, headless Chromium
    "sandbox/",  # the sandbox over HTTP
    "operations/test_fuzz.py",  # schemathesis against a receiver on the test ledger
    "operations/test_alerts.py",  # an alert receiver over HTTP
    "adapters/test_linear_time.py",  # CPU timings: wants a machine of its own
    "test_cli.py",  # the CLI in subprocesses
    "test_cli_channels.py",  # the CLI in subprocesses
)
SERVICE_MARKERS = ("chaos", "browser", "imap")


def _needs_services(item: pytest.Item, where: str) -> bool:
    callspec = getattr(item, "callspec", None)
    return bool(
        SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        or (callspec is not None and SERVICE_PARAMS.intersection(callspec.id.split("-")))
        or where.startswith(SERVICE_PATHS)
        or any(item.get_closest_marker(name) for name in SERVICE_MARKERS)
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = REPO / "tests"
    for item in items:
        path = Path(str(item.path))
        where = path.relative_to(tests).as_posix() if tests in path.parents else ""
        if _needs_services(item, where):
            item.add_marker(pytest.mark.services)


@pytest.fixture
def pipelines(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The statements psycopg sent in each pipeline (a pipeline: one round trip)."""
    sent: list[int] = []
    pipeline, execute = psycopg.Connection.pipeline, psycopg.Cursor.execute

    @contextlib.contextmanager
    def counted(conn: psycopg.Connection[Any]) -> Iterator[Any]:
        sent.append(0)
        with pipeline(conn) as p:
            yield p

    def counting(cursor: psycopg.Cursor[Any], *args: Any, **kwargs: Any) -> Any:
        if cursor.connection._pipeline is not None:
            sent[-1] += 1
        return execute(cursor, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "pipeline", counted)
    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    return sent
