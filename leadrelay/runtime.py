"""Everything a process needs, built once from the environment and validated at start."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Literal

import structlog
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from leadrelay.config_check import configured_routing
from leadrelay.db import make_engine, make_session_factory
from leadrelay.errors import ConfigurationError
from leadrelay.metrics import ROUTING_RELOADS
from leadrelay.nexudus.client import NexudusClient
from leadrelay.routing import Routing, RoutingError, check_secrets, load_routing
from leadrelay.routing.loading import parse_routing_text
from leadrelay.routing.watch import RoutingWatch
from leadrelay.settings import Settings, get_settings

log = structlog.get_logger(__name__)

SANDBOX_USERNAME = "sandbox@leadrelay.local"
SANDBOX_PASSWORD = "sandbox"  # noqa: S105 (the local sandbox's published demo login)


@dataclass(frozen=True, slots=True)
class Reload:
    """What :meth:`Runtime.refresh_routing` did; ``problems`` when it kept the old routing."""

    outcome: Literal["unchanged", "reloaded", "refused"]
    problems: list[str] = field(default_factory=list)


@dataclass
class Runtime:
    settings: Settings
    routing: Routing
    engine: Engine
    sessions: sessionmaker[Session]
    _clients: dict[str, NexudusClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    pid: int = field(default_factory=os.getpid)
    _watch: RoutingWatch | None = field(default=None, init=False, repr=False)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def load(
        cls, settings: Settings | None = None, routing: Routing | None = None, *, pool_size: int = 5
    ) -> Runtime:
        settings = settings or get_settings()
        settings.ensure_data_dir()
        # looked at before the file is read: a change in between is read again, never missed
        watch = RoutingWatch(settings.config) if routing is None and settings.config is not None else None
        routing = routing or configured_routing(settings)
        engine = make_engine(settings.ledger_url(), pool_size=pool_size)
        runtime = cls(
            settings=settings, routing=routing, engine=engine, sessions=make_session_factory(engine)
        )
        runtime._watch = watch
        return runtime

    def nexudus(self, account: str) -> NexudusClient:
        """The client for a routing account, created on first use."""
        with self._lock:
            client = self._clients.get(account)
            if client is None:
                client = self._clients[account] = self._make_client(account)
            return client

    def refresh_routing(self, *, force: bool = False, logins: bool = True) -> Reload:
        """Read ``LEADRELAY_CONFIG`` again if it changed (always when ``force``: SIGHUP).

        The new file is validated whole (the same loader, every webhook secret and account
        login resolved) before it replaces the running routing; a bad file keeps the old
        one and is logged, one line per problem (keys, never values), once per change.
        ``logins``: the Nexudus logins must resolve too (not for the receiver, which needs none).
        Cheap when nothing changed: one ``stat()``.
        """
        path = self.settings.config
        if path is None:
            return Reload("unchanged")  # the embedded routing does not change
        with self._reload_lock:
            if self._watch is None:  # the routing running now is the file as it is now
                self._watch = RoutingWatch(path)
                if not force:
                    return Reload("unchanged")
            text = self._watch.read_if_changed(force=force)
            if text is None and not force:
                return Reload("unchanged")
            try:
                routing = load_routing(path) if text is None else parse_routing_text(text, str(path))
                self._validate(routing, logins=logins)
            except RoutingError as err:
                for problem in err.problems:
                    log.warning("routing_reload_refused", source=str(path), problem=problem)
                log.warning("routing_kept", source=str(path), problems=len(err.problems))
                ROUTING_RELOADS.labels(outcome="refused").inc()
                return Reload("refused", err.problems)
            self._swap(routing)
            log.info("routing_reloaded", source=str(path), channels=len(routing.channels))
            ROUTING_RELOADS.labels(outcome="reloaded").inc()
            return Reload("reloaded")

    def _validate(self, routing: Routing, *, logins: bool) -> None:
        problems = [check.problem for check in check_secrets(routing, parts=["webhooks"])]
        for account in routing.accounts if logins else ():
            try:
                self._credentials(routing, account)
            except ConfigurationError as err:
                problems.append(str(err))
        if problems:
            raise RoutingError(str(self.settings.config), problems)

    def _swap(self, routing: Routing) -> None:
        with self._lock:
            old = self.routing
            self.routing = routing
            for account in list(self._clients):  # a changed or removed account gets a new client
                if routing.accounts.get(account) != old.accounts.get(account):
                    self._clients.pop(account)  # not closed: a task may be using it; collected later

    def _credentials(self, routing: Routing, account: str) -> tuple[str, SecretStr]:
        config = routing.accounts[account]
        where = f"accounts.{account}"
        try:
            username = config.resolved_username(where, self.settings.nexudus_username)
            password = config.resolved_password(where, self.settings.nexudus_password)
        except RoutingError as err:
            raise ConfigurationError("; ".join(err.problems)) from None
        if not username or password is None:
            raise ConfigurationError(
                f"no Nexudus credentials for account {account!r}: set NEXUDUS_USERNAME and "
                f"NEXUDUS_PASSWORD, or {where}.username and {where}.password_env in the routing file"
            )
        return username, password

    def _make_client(self, account: str) -> NexudusClient:
        config = self.routing.accounts[account]
        username, password = self._credentials(self.routing, account)
        from leadrelay.nexudus.auth_state import record_auth
        from leadrelay.nexudus.budget import budget_for

        def on_auth(ok: bool, error: str | None) -> None:
            record_auth(self.sessions, account, ok=ok, error=error)

        return NexudusClient(
            account=account,
            base_url=config.base_url or self.settings.nexudus_base_url,
            username=username,
            password=password,
            timeout=self.settings.nexudus_timeout,
            budget=budget_for(self, account),
            max_inline_wait=self.settings.budget_wait_seconds,
            on_auth=on_auth,
        )

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self.engine.dispose()


_current: Runtime | None = None
_current_lock = threading.Lock()
_pool_size = 5


def set_pool_size(size: int) -> None:
    """Connections kept by the process's runtime: two per task thread (``db.kept_connections``), and spare."""
    global _pool_size
    _pool_size = max(5, size)


def current_runtime() -> Runtime:
    """This process's runtime; rebuilt after a fork (pooled connections must not cross it)."""
    global _current
    with _current_lock:
        if _current is not None and _current.pid != os.getpid():
            # inherited from the parent (a prefork pool child): drop its pool without
            # closing the connections, which are the parent's, still in use there
            _current.engine.dispose(close=False)
            _current = None
        if _current is None:
            _current = Runtime.load(pool_size=_pool_size)
        return _current


def _after_fork_in_child() -> None:
    # another thread (the worker's scheduler) may have held the lock when the
    # process forked; the child has no such thread to release it
    global _current_lock
    _current_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def reset_runtime() -> None:
    global _current
    with _current_lock:
        if _current is not None and _current.pid == os.getpid():
            _current.close()
        _current = None
