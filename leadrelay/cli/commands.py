"""Running leadrelay: schema, receiver, worker, scheduler, parser, sandbox, demo."""

from __future__ import annotations

import math
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from leadrelay.cli.app import app, console, fail, light_check_or_fail, routing_or_fail, say_error
from leadrelay.settings import get_settings

SERVICE_LEDGER_WAIT = 60.0  # seconds a service waits for the ledger at start-up (fixed)
# libpq's answers that waiting cannot change: the ledger answered, and said no
_REFUSED = re.compile(r"password authentication failed|no pg_hba\.conf entry|role \"[^\"]*\" does not exist")


def ready_ledger(wait: float = 0.0) -> None:
    """Embedded: create or upgrade the SQLite ledger. Otherwise refuse a stale schema.

    A service (``serve``, ``worker``, ``beat``) passes ``wait``: a ledger it cannot reach
    yet (Postgres restarting, or starting beside it) is tried again for that long
    rather than exiting into its supervisor's restart loop.
    """
    from leadrelay.db import make_engine
    from leadrelay.schema import pending, upgrade

    settings = get_settings()
    settings.ensure_data_dir()
    if settings.embedded:
        upgrade(settings.ledger_url())
        return
    engine = make_engine(settings.ledger_url())
    try:
        stale = _reached(lambda: pending(engine), wait)
    finally:
        engine.dispose()
    if stale:
        fail("the ledger schema is not up to date: run `leadrelay migrate` first")


def _reached(check: Callable[[], bool], wait: float) -> bool:
    """``check()``, tried again with backoff for ``wait`` seconds while the ledger is unreachable.

    Anything else — a refused login, an error in a statement — ends it at once. What
    libpq said (host, port, role, database: never the password) is in the last line.
    SIGTERM ends the wait at once, as a process with no handler would end (a
    container's first process ignores it otherwise).
    """
    from leadrelay.db import LEDGER_UNREACHABLE

    deadline, pause = time.monotonic() + wait, 0.5
    with _terminated_at_once():
        while True:
            try:
                return check()
            except Exception as exc:
                said = _libpq_said(exc)
                left = deadline - time.monotonic()
                reason = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
                if not isinstance(exc, LEDGER_UNREACHABLE) or _REFUSED.search(said) or left <= 0:
                    waited = f" after {wait:.0f} s" if wait > 0 and left <= 0 else ""
                    fail(f"cannot reach the ledger database{waited} ({reason}): check LEADRELAY_DATABASE_URL")
                say_error(
                    f"cannot reach the ledger database yet ({reason}): "
                    f"trying again for up to {math.ceil(left)} s"
                )
                time.sleep(min(pause, left))
                pause = min(pause * 2, 5.0)


def _libpq_said(exc: Exception) -> str:
    """The last line of the driver's own message, shortened (SQLAlchemy's adds the statement)."""
    lines = str(getattr(exc, "orig", None) or "").strip().splitlines()
    return lines[-1][:200] if lines else ""


@contextmanager
def _terminated_at_once() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@app.command()
def migrate() -> None:
    """Bring the ledger schema to the latest revision."""
    from sqlalchemy.engine import make_url

    from leadrelay.schema import upgrade

    settings = get_settings()
    settings.ensure_data_dir()
    url = settings.ledger_url()
    try:
        upgrade(url)
    except Exception as exc:
        fail(f"migration failed ({type(exc).__name__}: {exc})")
    console.print(f"Ledger schema is up to date: {make_url(url).render_as_string(hide_password=True)}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="receiver processes")] = 1,
) -> None:
    """Run the webhook receiver (and /healthz, /readyz, /metrics, /docs)."""
    import uvicorn

    from leadrelay import logs

    light_check_or_fail()
    ready_ledger(wait=SERVICE_LEDGER_WAIT)
    logs.configure()
    settings = get_settings()
    uvicorn.run(
        "leadrelay.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
        limit_concurrency=settings.max_connections,  # beyond it: 503 at once, not an unbounded queue
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="tasks run at once")] = 2,
    pool: Annotated[str | None, typer.Option(help="prefork or threads (default: by mode)")] = None,
    beat: Annotated[
        bool,
        typer.Option(
            "--beat/--no-beat",
            help="stand for the scheduler: the sweeper, inbox polls, alerts, retention (one worker leads)",
        ),
    ] = True,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="serve Prometheus /metrics on this port", envvar="LEADRELAY_WORKER_METRICS_PORT"),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="interface for --metrics-port", envvar="LEADRELAY_WORKER_METRICS_HOST")
    ] = "127.0.0.1",
    name: Annotated[
        str | None,
        typer.Option(
            help="the node name, unique among running workers (default: leadrelay-<pid>; @<host> added)",
            envvar="LEADRELAY_WORKER_NAME",
        ),
    ] = None,
) -> None:
    """Run a Celery worker: normalise, dedupe and deliver leads."""
    from leadrelay import logs
    from leadrelay.runtime import Runtime
    from leadrelay.worker.celery_app import app as celery_app
    from leadrelay.worker.celery_app import node_name
    from leadrelay.worker.scheduling.in_worker import join_election

    routing = light_check_or_fail()
    ready_ledger(wait=SERVICE_LEDGER_WAIT)
    settings = get_settings()
    runtime = Runtime.load(settings, routing)
    try:
        for account in routing.accounts:
            runtime.nexudus(account)  # a ConfigurationError: one line, exit 1 (cli.main)
    finally:
        runtime.close()
    logs.configure()
    embedded = settings.broker_url is None
    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--pool={pool or ('threads' if embedded else 'prefork')}",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        f"--hostname={node_name(name)}",
        f"--queues={','.join(('leadrelay.leads', 'leadrelay.control'))}",
    ]
    join_election(beat)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from leadrelay.metrics import exposition_registry

        # in this (the parent) process: it adds up what every pool process counted
        start_http_server(metrics_port, addr=metrics_host, registry=exposition_registry())
    celery_app.worker_main(argv)


@app.command("beat")
def run_beat() -> None:
    """Run a scheduler candidate on its own (every worker is one too; one leads at a time)."""
    from leadrelay import logs
    from leadrelay.worker.scheduling.standalone import run_until_signalled

    light_check_or_fail()
    ready_ledger(wait=SERVICE_LEDGER_WAIT)
    logs.configure()
    run_until_signalled()


@app.command()
def parse(
    files: Annotated[
        list[Path],
        typer.Argument(help="webhook bodies (.json) or e-mails (.eml)", metavar="FILE", exists=False),
    ],
    channel: Annotated[
        str | None,
        typer.Option("--channel", "-c", help="channel name, e.g. hubblehq (default: detected per file)"),
    ] = None,
    kind: Annotated[str | None, typer.Option(help="webhook or email (default: from the file)")] = None,
) -> None:
    """Print the CanonicalLead each payload becomes (exit 2 with a reason for any that cannot be read).

    Without --channel the channel is detected — a mail by its (original) sender or
    content, a webhook by its shape — and named on stderr; with it, a payload that
    looks like another channel's is warned about on stderr and still read as told.
    """
    from leadrelay.cli.parsing import parse_files

    routing = routing_or_fail()
    if channel is not None and channel not in routing.channels:
        known = ", ".join(sorted(routing.channels))
        fail(f"no channel named {channel!r} in the routing file (known: {known})", code=2)
    if kind not in (None, "email", "webhook"):
        fail("--kind must be webhook or email", code=2)
    if not parse_files(routing, files, channel=channel, kind=kind):
        raise typer.Exit(2)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8900,
    limits: Annotated[bool, typer.Option(help="enforce Nexudus's documented rate limits")] = True,
    speed: Annotated[float, typer.Option(help="run the rate-limit clock this many times faster")] = 1.0,
) -> None:
    """Run a local Nexudus sandbox that follows the documented API contract."""
    from leadrelay.sandbox import SandboxOptions
    from leadrelay.sandbox import serve as serve_sandbox

    console.print(
        f"Nexudus sandbox on http://{host}:{port} — login sandbox@leadrelay.local / sandbox "
        f"(limits {'on' if limits else 'off'}, clock ×{speed:g})"
    )
    serve_sandbox(host, port, options=SandboxOptions(limits_enabled=limits, speed=speed))


@app.command()
def demo(
    keep: Annotated[
        bool,
        typer.Option(
            "--keep", help="leave the stack running afterwards, with the admin page to explore, until Ctrl-C"
        ),
    ] = False,
) -> None:
    """The whole flow on this machine: webhooks and a portal e-mail, receiver, worker, Nexudus sandbox."""
    from leadrelay.demo import run_demo

    raise typer.Exit(run_demo(console, keep=keep))
