"""All the sandbox knows, in memory, behind one lock: tenants, tokens, settings, faults, the request log."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from leadrelay.errors import NotFound, Refused
from leadrelay.sandbox.auth import TokenStore
from leadrelay.sandbox.envelopes import Record, iso_utc
from leadrelay.sandbox.faults import SOFT_FAIL, FaultBook, FaultRule
from leadrelay.sandbox.options import Limits, Quirks, SandboxOptions, TenantSpec, TokenSettings
from leadrelay.sandbox.resources import COWORKERS, OPPORTUNITIES
from leadrelay.sandbox.seed import seed
from leadrelay.sandbox.tenant import Counters, Tenant

THROTTLE_STATUSES = frozenset({409, 429})


class UnknownTenant(NotFound, KeyError):
    """No tenant has this login."""


class TenantExists(Refused, ValueError):
    """A tenant with this login exists already."""


class SandboxState:
    """Thread-safe: the server's event loop and a test's thread share it through ``lock``.

    Methods whose names start with ``_`` or say "lock held" expect the caller to hold the lock.
    """

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.lock = threading.Lock()
        self.generation = 0  # bumped by reset: calls still in flight from before are not logged
        with self.lock:
            self._load()

    def _load(self) -> None:
        options = self.options
        self.generation += 1
        self.limits: Limits = options.limits()
        self.quirks: Quirks = options.quirks.model_copy()
        self.tokens = TokenStore(options.token_settings())
        self.faults = FaultBook()
        self.tenants: dict[str, Tenant] = {}
        self.unattributed = Counters()  # calls with no authenticated login (token requests, 401s)
        self.log: deque[Record] = deque(maxlen=options.request_log_size)
        self._sequence = 0
        for spec in options.tenants:
            self._add_tenant(spec)

    def reset(self) -> None:
        """Back to the start-up options: seed data, settings, no tokens, no faults, an empty log."""
        with self.lock:
            self._load()

    # --- tenants ---------------------------------------------------------------------------
    def _add_tenant(self, spec: TenantSpec) -> Tenant:
        if spec.username in self.tenants:
            raise TenantExists(f"tenant {spec.username!r} already exists")
        tenant = Tenant(spec)
        if spec.seed:
            seed(tenant)
        self.tenants[spec.username] = tenant
        return tenant

    def add_tenant(self, spec: TenantSpec) -> Tenant:
        with self.lock:
            return self._add_tenant(spec)

    def tenant(self, username: str | None = None) -> Tenant:
        """A tenant by login; the first configured one by default."""
        login = username or self.options.tenants[0].username
        try:
            return self.tenants[login]
        except KeyError:
            raise UnknownTenant(login) from None

    # --- runtime settings ------------------------------------------------------------------
    def set_limits(self, **changes: Any) -> Limits:
        """Change limits (validated); every tenant's request windows start afresh."""
        with self.lock:
            self.limits = Limits.model_validate(self.limits.model_dump() | changes)
            for tenant in self.tenants.values():
                tenant.limiter = type(tenant.limiter)()
            return self.limits

    def set_quirks(self, **changes: Any) -> Quirks:
        """Change quirks; ``throttle_status`` (409/429) is the limits' setting, accepted here too."""
        if "throttle_status" in changes:
            self.set_limits(throttle_status=changes.pop("throttle_status"))
        with self.lock:
            self.quirks = Quirks.model_validate(self.quirks.model_dump() | changes)
            return self.quirks

    def set_token_settings(self, **changes: Any) -> TokenSettings:
        """Lifetimes of tokens issued from now on."""
        with self.lock:
            self.tokens.settings = TokenSettings.model_validate(self.tokens.settings.model_dump() | changes)
            return self.tokens.settings

    def revoke_tokens(self) -> int:
        with self.lock:
            return self.tokens.revoke_all()

    def add_fault(self, rule: FaultRule) -> FaultRule:
        with self.lock:
            return self.faults.add(rule)

    def fault_rules(self) -> list[FaultRule]:
        with self.lock:
            return [rule.model_copy() for rule in self.faults.rules]

    def remove_fault(self, rule_id: int | None = None) -> int:
        """Remove one rule, or all with None; how many were removed."""
        with self.lock:
            if rule_id is not None:
                return int(self.faults.remove(rule_id))
            count = len(self.faults.rules)
            self.faults.rules.clear()
            return count

    # --- the request path (lock held) ------------------------------------------------------
    def admit(self, tenant: Tenant, is_write: bool) -> float:
        """Count the call; seconds it must wait when throttled, else 0 (lock held)."""
        tenant.counters.requests += 1
        tenant.counters.writes += int(is_write)
        if not self.limits.enabled:
            return 0.0
        return tenant.limiter.admit(time.monotonic(), self.limits.speed, is_write)

    def pick_fault(self, method: str, path: str, tenant: Tenant | None, is_write: bool) -> FaultRule | None:
        """The fault rule (or soft-failure quirk) this call meets, if any (lock held)."""
        counters = tenant.counters if tenant else self.unattributed
        rule = (
            self.faults.take(method, path, tenant.username if tenant else None) if self.faults.rules else None
        )
        if rule is not None:
            counters.faults_fired += 1
            return rule
        chance = self.quirks.soft_fail_probability
        if is_write and chance and random.random() < chance:
            counters.soft_failures += 1
            return SOFT_FAIL
        return None

    def finish(self, entry: Record, tenant: Tenant | None, generation: int) -> None:
        """Log an answered call and count throttled answers (unless a reset came in between)."""
        with self.lock:
            if generation != self.generation:
                return
            if entry["status"] in THROTTLE_STATUSES:
                (tenant.counters if tenant else self.unattributed).throttled += 1
            self._sequence += 1
            entry["seq"] = self._sequence
            self.log.append(entry)

    # --- inspection ------------------------------------------------------------------------
    def requests(self, since: float | None = None, tenant: str | None = None) -> list[Record]:
        """Logged calls (oldest first) that started after ``since`` (epoch seconds)."""
        with self.lock:
            entries = list(self.log)
        return [
            entry | {"time": iso_utc(datetime.fromtimestamp(entry["at"], UTC))}
            for entry in entries
            if (since is None or entry["at"] > since) and (tenant is None or entry["tenant"] == tenant)
        ]

    def records(self, table: str, username: str | None = None) -> list[Record]:
        """Copies of one tenant's records of a table, by Id."""
        with self.lock:
            rows = list(self.tenant(username).tables[table].values())
        return sorted((dict(row) for row in rows), key=lambda row: row["Id"])

    def delete_coworker(self, coworker_id: int, username: str | None = None) -> bool:
        """Delete a coworker behind the API's back (as an admin would in the Nexudus UI)."""
        with self.lock:
            tenant = self.tenant(username)
            record = tenant.tables[COWORKERS.table].pop(coworker_id, None)
            if record is not None:
                COWORKERS.indexed(tenant, record, None)
            return record is not None

    def snapshot(self, username: str | None = None) -> Record:
        """``GET /_sandbox/state``: records, counters and settings (one tenant, or all)."""
        with self.lock:
            chosen = [self.tenant(username)] if username else list(self.tenants.values())
            tenants = {tenant.username: self._describe(tenant) for tenant in chosen}
            return {
                "now": iso_utc(),
                "tenants": tenants,
                "unattributed": self.unattributed.to_json(),
                "limits": self.limits.model_dump(),
                "quirks": self.quirks.model_dump(),
                "tokens": self.tokens.settings.model_dump()
                | {"issued_access": len(self.tokens.access), "issued_refresh": len(self.tokens.refresh)},
                "faults": [rule.model_dump() for rule in self.faults.rules],
            }

    @staticmethod
    def _describe(tenant: Tenant) -> Record:
        return {
            "username": tenant.username,
            "default_business_id": tenant.default_business_id,
            "counters": tenant.counters.to_json(),
            "coworkers": list(tenant.tables[COWORKERS.table].values()),
            "opportunities": list(tenant.tables[OPPORTUNITIES.table].values()),
            "opportunities_per_location": {str(k): v for k, v in tenant.location_counts.items() if v},
            "welcome_emails": list(tenant.welcome_emails),
        }
