"""The routing file checked without the network: the light form of ``leadrelay check``.

It runs at the start of ``serve``, ``worker`` and ``beat`` and as a ``/readyz``
detail: the file parses, every secret it names (webhooks, accounts, inboxes) can
be resolved, and the embedded demo routing — whose secrets are public — is not
being used outside the embedded mode. The full form (Nexudus ids, inbox logins)
lives in :mod:`leadrelay.worker.config_check`. Every problem is one line that
starts with the key it is about.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from leadrelay.errors import ConfigurationError
from leadrelay.routing import Routing, RoutingError, check_secrets, load_routing
from leadrelay.routing.staff import notification_problems
from leadrelay.settings import Settings

DEMO_ROUTING_REFUSED = (
    "LEADRELAY_CONFIG: not set, and the embedded demo routing (its webhook secrets are public) "
    "is only used with the embedded SQLite ledger: set LEADRELAY_CONFIG to your routing file "
    "(`leadrelay init` writes one)"
)


@dataclass(frozen=True)
class CheckReport:
    """What a check found: ``problems`` are ``key: what is wrong`` lines (none: it passed)."""

    form: str  # "light" (no network) or "full"
    problems: list[str]
    at: float = field(default_factory=time.time)  # when it ran (Unix time)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "ok": self.ok,
            "at": round(self.at, 3),
            "problems": list(self.problems),
        }


def demo_routing_refused(settings: Settings) -> bool:
    """A real database, no routing file and no explicit opt-in: the demo's secrets would be served."""
    return settings.config is None and not settings.embedded and not settings.allow_demo_routing


def configured_routing(settings: Settings) -> Routing:
    """The routing file (or, embedded, the demo routing); ConfigurationError when that is unsafe."""
    if demo_routing_refused(settings):
        raise ConfigurationError(DEMO_ROUTING_REFUSED)
    return load_routing(settings.config)


def inbox_secret_problems(routing: Routing) -> list[str]:
    """Each inbox's password or OAuth2 secrets, resolved (nothing is sent anywhere)."""
    problems: list[str] = []
    for name, inbox in routing.inboxes.items():
        where = f"inboxes.{name}"
        try:
            if inbox.oauth2 is None:
                inbox.resolved_password(where)
            elif inbox.oauth2.grant == "refresh_token":
                inbox.oauth2.resolved_refresh_token(f"{where}.oauth2")
                inbox.oauth2.resolved_client_secret(f"{where}.oauth2")
            else:
                inbox.oauth2.resolved_client_secret(f"{where}.oauth2")
        except RoutingError as err:
            problems.extend(err.problems)
    return problems


def routing_problems(routing: Routing) -> list[str]:
    """Every secret of a parsed routing that cannot be resolved."""
    secrets = [check.problem for check in check_secrets(routing, parts=("webhooks", "accounts"))]
    return [*secrets, *inbox_secret_problems(routing)]


def light_check(settings: Settings) -> tuple[Routing | None, CheckReport]:
    """Parse the routing file and resolve its secrets: no network, milliseconds."""
    try:
        routing = configured_routing(settings)
    except RoutingError as err:
        return None, CheckReport("light", [f"{err.source}: {problem}" for problem in err.problems])
    except ConfigurationError as err:
        return None, CheckReport("light", [str(err)])
    problems = [*routing_problems(routing), *notification_problems(routing, smtp_host=settings.smtp_host)]
    return routing, CheckReport("light", problems)


_last: dict[str, CheckReport] = {}


def remember(report: CheckReport) -> None:
    """Keep this process's latest check of each form (``/readyz`` shows them)."""
    _last[report.form] = report


def remembered() -> dict[str, CheckReport]:
    return dict(_last)
