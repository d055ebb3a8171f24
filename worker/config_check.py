"""The full ``leadrelay check``: the light form, then every id against Nexudus and every inbox.

Logs in to every account (a refused login is one problem, and that account's ids
are not looked up); confirms each location's ``business_id``, ``board_column_id``
(on a board of that business), ``country_id``, ``timezone_id`` and each
``agent_id`` (a coworker: the record that stands for the broker, NEXUDUS.md);
logs in to every inbox (password or XOAUTH2) and confirms its folders. It reads
only: nothing is written to Nexudus, to an inbox or to the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from leadrelay.config_check import CheckReport, light_check
from leadrelay.errors import LeadRelayError
from leadrelay.nexudus import client as api
from leadrelay.nexudus.client import NexudusClient
from leadrelay.nexudus.lookups import Paced, record, records_page
from leadrelay.routing import Routing, RoutingError
from leadrelay.settings import Settings
from leadrelay.worker.imap.connection import open_session
from leadrelay.worker.imap.errors import InboxError

ClientFactory = Callable[[str, str, str, SecretStr], NexudusClient]  # account, base URL, user, password


@dataclass
class _Lookups:
    """One account's records, each read at most once."""

    client: NexudusClient
    records: dict[tuple[str, int], dict[str, Any] | None] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    unchecked: dict[str, str] = field(default_factory=dict)  # path -> why its ids were not looked up
    _listable: dict[str, bool] = field(default_factory=dict)

    def listable(self, path: str) -> bool:
        """Whether this Nexudus answers ``path`` at all: the list of countries and of time
        zones are not in NEXUDUS.md, so a 404 there says "cannot check", not "no such id"."""
        if path not in self._listable:
            answer = records_page(self.client, path)
            self._listable[path] = answer.status_code != 404
            if answer.status_code == 404:
                self.unchecked[path] = "this Nexudus does not answer it: the ids were not checked"
        return self._listable[path]

    def record(self, path: str, record_id: int) -> dict[str, Any] | None:
        key = (path, record_id)
        if key not in self.records:
            result = record(self.client, path, record_id)
            if not result.ok:
                self.failures.append(f"GET {path}/{record_id}: {result.message or result.outcome.value}")
            value = result.value if result.ok and isinstance(result.value, dict) else None
            self.records[key] = value
        return self.records[key]


def webhook_channels(routing: Routing, base_url: str) -> list[dict[str, Any]]:
    """Each channel's webhook URL and signing scheme (``none``: e-mail only)."""
    base = base_url.rstrip("/")
    return [
        {
            "channel": name,
            "url": f"{base}/webhooks/{name}",
            "scheme": channel.webhook.scheme if channel.webhook is not None else "none (e-mail only)",
            "lead_source": channel.lead_source,
        }
        for name, channel in routing.channels.items()
    ]


def _client(settings: Settings, routing: Routing, account: str) -> NexudusClient | str:
    config, where = routing.accounts[account], f"accounts.{account}"
    try:
        username = config.resolved_username(where, settings.nexudus_username)
        password = config.resolved_password(where, settings.nexudus_password)
    except RoutingError as err:
        return "; ".join(err.problems)
    if not username or password is None:
        return (
            f"{where}: no Nexudus credentials: set NEXUDUS_USERNAME and NEXUDUS_PASSWORD, "
            f"or {where}.username and {where}.password_env"
        )
    return NexudusClient(
        account=account,
        base_url=config.base_url or settings.nexudus_base_url,
        username=username,
        password=password,
        timeout=settings.nexudus_timeout,
        budget=Paced(),
    )


def _column_problems(key: str, column_id: int, business_id: int | None, look: _Lookups) -> list[str]:
    column = look.record(api.BOARD_COLUMNS, column_id)
    if column is None:
        return [f"{key}: {column_id} is not a CRM board column in Nexudus"]
    if business_id is None:  # the column's owner cannot be wrong: the business is
        return []
    board = look.record(api.BOARDS, int(column.get("CrmBoardId") or 0))
    if board is None or board.get("BusinessId") != business_id:
        return [f"{key}: {column_id} is not a column of business {business_id}'s boards"]
    return []


def _location_problems(name: str, loc: Any, look: _Lookups) -> list[str]:
    where, problems = f"locations.{name}", []
    business = look.record(api.BUSINESSES, loc.business_id)
    if business is None:
        problems.append(f"{where}.business_id: {loc.business_id} is not a business (location) in Nexudus")
    columns = {f"{where}.board_column_id": loc.board_column_id}
    for key, mapping in [
        ("mapping", loc.mapping),
        *((f"by_channel.{c}", m) for c, m in loc.by_channel.items()),
    ]:
        if mapping is not None and mapping.board_column_id is not None:
            columns[f"{where}.{key}.board_column_id"] = mapping.board_column_id
    for key, column_id in columns.items():
        problems += _column_problems(key, column_id, loc.business_id if business else None, look)
    country = look.record(api.COUNTRIES, loc.country_id) if look.listable(api.COUNTRIES) else {}
    if country is None:
        problems.append(f"{where}.country_id: {loc.country_id} is not a country in Nexudus")
    elif str(country.get("TwoLetterCode") or loc.country).upper() != loc.country:
        problems.append(
            f"{where}.country: {loc.country}, but country_id {loc.country_id} is "
            f"{country.get('TwoLetterCode')}"
        )
    if look.listable(api.TIME_ZONES) and look.record(api.TIME_ZONES, loc.timezone_id) is None:
        problems.append(f"{where}.timezone_id: {loc.timezone_id} is not a time zone in Nexudus")
    for channel, agent in loc.agent_ids.items():
        if look.record(api.COWORKERS, agent) is None:
            problems.append(f"{where}.agent_ids.{channel}: {agent} is not a coworker (agent) in Nexudus")
    if loc.responsible_id is not None and look.record(api.COWORKERS, loc.responsible_id) is None:
        problems.append(f"{where}.responsible_id: {loc.responsible_id} is not a coworker in Nexudus")
    return problems


def nexudus_problems(settings: Settings, routing: Routing) -> tuple[list[str], dict[str, str]]:
    """Every id the routing file names, looked up in its account; and each account's login
    (``ok``, ``refused``, …, with what could not be checked there)."""
    problems: list[str] = []
    logins: dict[str, str] = {}
    lookups: dict[str, _Lookups] = {}
    for account in routing.accounts:
        made = _client(settings, routing, account)
        if isinstance(made, str):
            problems.append(made)
            logins[account] = "no credentials"
            continue
        auth = made.check_auth()
        if not auth.ok:
            problems.append(
                f"accounts.{account}: the Nexudus login failed: {auth.message or auth.outcome.value}"
            )
            logins[account] = "refused"
            made.close()
            continue
        logins[account] = "ok"
        lookups[account] = _Lookups(made)
    try:
        for name, loc in routing.locations.items():
            if loc.account in lookups:
                problems.extend(_location_problems(name, loc, lookups[loc.account]))
        for name, channel in routing.channels.items():
            if channel.agent_id is None:
                continue
            users = {loc.account for loc in routing.locations.values()} or set(routing.accounts)
            for account in sorted(users & set(lookups)):
                if lookups[account].record(api.COWORKERS, channel.agent_id) is None:
                    problems.append(
                        f"channels.{name}.agent_id: {channel.agent_id} is not a coworker (agent) "
                        f"in Nexudus account {account!r}"
                    )
        for account, look in lookups.items():
            problems.extend(f"accounts.{account}: {failure}" for failure in look.failures)
            if look.unchecked:
                logins[account] += "; not checked: " + ", ".join(
                    f"{p} ({why})" for p, why in look.unchecked.items()
                )
    finally:
        for look in lookups.values():
            look.client.close()
    return problems, logins


def inbox_problems(routing: Routing) -> tuple[list[str], dict[str, str]]:
    """Log in to every inbox and confirm its folders (nothing is selected for writing)."""
    problems: list[str] = []
    states: dict[str, str] = {}
    for name, inbox in routing.inboxes.items():
        where = f"inboxes.{name}"
        try:
            with open_session(name, inbox) as session:
                for key in ("folder", "processed_folder"):
                    folder = getattr(inbox, key)
                    if folder is None:
                        continue
                    try:
                        session.require_folder(folder, key=key)
                    except InboxError as err:
                        problems.append(f"{where}.{key}: {err}")
        except LeadRelayError as err:  # an InboxError, or a secret that cannot be resolved
            problems.append(f"{where}: {err}")
            states[name] = "failed"
            continue
        states[name] = "ok"
    return problems, states


def full_check(settings: Settings, *, base_url: str | None = None) -> CheckReport:
    """The light check, then Nexudus and the inboxes (only when the file itself can be read)."""
    routing, light = light_check(settings)
    if routing is None:
        return CheckReport("full", light.problems)
    problems = list(light.problems)
    nexudus, logins = nexudus_problems(settings, routing)
    inboxes, states = inbox_problems(routing)
    problems += nexudus + inboxes
    details = {
        "accounts": logins,
        "inboxes": states,
        "channels": webhook_channels(routing, base_url or settings.public_url),
    }
    return CheckReport("full", list(dict.fromkeys(problems)), details=details)
