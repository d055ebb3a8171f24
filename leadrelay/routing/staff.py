"""Who a new opportunity is for: the staff directory, the assignment rules, the speed-to-lead alerts.

``staff`` maps a Nexudus user id (what an opportunity's ``ResponsibleId`` holds)
to a name and an e-mail. ``assignment`` is a list of rules; the most specific
rule matching a lead's account, location and channel decides its
``ResponsibleId`` (docs/configuration.md, "Assignment and speed to lead").
``notifications`` says how the assigned salesperson, or else the location's
team, hears of a new opportunity or a later introduction.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator

from leadrelay.routing.base import RoutingError, StrictModel
from leadrelay.routing.secrets import resolve_secret

if TYPE_CHECKING:
    from leadrelay.routing.model import Routing

EMAIL = r"^[^@\s]+@[^@\s]+$"


class AssignmentMode(StrEnum):
    fixed = "fixed"  # always the one staff id
    round_robin = "round_robin"  # each in turn, the turn kept in Postgres
    least_open = "least_open"  # whoever holds the fewest open opportunities from leadrelay


class StaffMember(StrictModel):
    name: str | None = None
    email: str | None = Field(default=None, pattern=EMAIL, max_length=320)


class AssignmentRule(StrictModel):
    """Staff ids a lead's opportunity goes to, for the leads this rule matches."""

    pool: str | None = Field(
        default=None, max_length=200, description="the rotation's name (default: from the filters)"
    )
    mode: AssignmentMode = AssignmentMode.round_robin
    staff: list[int] = Field(min_length=1, description="Nexudus user ids (ResponsibleId)")
    account: str | None = None
    location: str | None = None
    channel: str | None = None
    open_days: int = Field(
        default=30, gt=0, description="least_open: an opportunity counts as open this long after assignment"
    )

    @property
    def specificity(self) -> int:
        return sum(value is not None for value in (self.account, self.location, self.channel))

    @property
    def pool_name(self) -> str:
        if self.pool:
            return self.pool
        return "/".join(value or "*" for value in (self.account, self.location, self.channel))

    def matches(self, *, account: str, location: str, channel: str) -> bool:
        return all(
            mine is None or mine == theirs
            for mine, theirs in ((self.account, account), (self.location, location), (self.channel, channel))
        )


class WebhookTarget(StrictModel):
    """A Slack/Teams-style incoming webhook that takes JSON with a ``text``; its URL is a secret."""

    url: SecretStr | None = None
    url_env: str | None = None
    url_file: Path | None = None

    def resolved(self, where: str) -> str | None:
        secret = resolve_secret(self.url, self.url_env, self.url_file, f"{where}.url")
        return secret.get_secret_value() if secret is not None else None


class TeamConfig(StrictModel):
    """A location's team: told when nobody in the staff directory is assigned (and its webhook always)."""

    email: list[str] = Field(default_factory=list)
    webhook: WebhookTarget | None = None


class NotificationsConfig(StrictModel):
    enabled: bool = Field(default=False, description="tell staff of new opportunities and introductions")
    email: bool = Field(default=True, description="by e-mail (needs LEADRELAY_SMTP_HOST)")
    opportunity_url: str | None = Field(
        default=None,
        description="the deep link to an opportunity: {id} is its Id, {account} the account's name "
        "(default: LEADRELAY_NEXUDUS_WEB_OPPORTUNITY_URL, the admin page's link)",
    )
    webhook: WebhookTarget | None = Field(default=None, description="every notification, all locations")
    teams: dict[str, TeamConfig] = Field(default_factory=dict, description="per location")

    @field_validator("opportunity_url")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            value.format(id=1, account="main")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"only {{id}} and {{account}} may be filled in ({err!r})") from None
        return value


def rule_for(routing: Routing, *, account: str, location: str, channel: str) -> AssignmentRule | None:
    """The most specific rule matching the lead (the first such in the file), or None."""
    found: AssignmentRule | None = None
    for rule in routing.assignment:
        if rule.matches(account=account, location=location, channel=channel) and (
            found is None or rule.specificity > found.specificity
        ):
            found = rule
    return found


def staff_problems(routing: Routing) -> list[str]:
    """What in the staff sections names something the file does not have."""
    problems: list[str] = []
    pools: dict[str, AssignmentRule] = {}
    for n, rule in enumerate(routing.assignment):
        where = f"assignment[{n}]"
        for kind, name, known in (
            ("account", rule.account, routing.accounts),
            ("location", rule.location, routing.locations),
            ("channel", rule.channel, routing.channels),
        ):
            if name is not None and name not in known:
                problems.append(f"{where}.{kind}: no {kind} named {name!r}")
        if rule.mode is AssignmentMode.fixed and len(rule.staff) != 1:
            problems.append(f"{where}.staff: fixed assignment takes exactly one staff id")
        if len(set(rule.staff)) != len(rule.staff):
            problems.append(f"{where}.staff: a staff id is listed twice")
        other = pools.setdefault(rule.pool_name, rule)
        if other is not rule and (other.staff, other.mode) != (rule.staff, rule.mode):
            problems.append(f"{where}.pool: {rule.pool_name!r} is another rule's pool with other staff")
    for name in routing.notifications.teams:
        if name not in routing.locations:
            problems.append(f"notifications.teams.{name}: no location named {name!r}")
    for name, team in routing.notifications.teams.items():
        for address in team.email:
            if "@" not in address or any(c.isspace() for c in address):
                problems.append(f"notifications.teams.{name}.email: {address!r} is not an e-mail address")
    return problems


def notification_problems(routing: Routing, *, smtp_host: str | None) -> list[str]:
    """What would stop notifications going out: no SMTP server for the e-mails, a webhook URL unset."""
    config = routing.notifications
    if not config.enabled:
        return []
    problems: list[str] = []
    mails = any(m.email for m in routing.staff.values()) or any(t.email for t in config.teams.values())
    if config.email and mails and not smtp_host:
        problems.append("notifications.email: e-mails to staff need LEADRELAY_SMTP_HOST (or email: false)")
    hooks = [("notifications.webhook", config.webhook)] + [
        (f"notifications.teams.{name}.webhook", team.webhook) for name, team in config.teams.items()
    ]
    for where, hook in hooks:
        if hook is None:
            continue
        try:
            if hook.resolved(where) is None:
                problems.append(f"{where}: give url, url_env or url_file")
        except RoutingError as err:
            problems.extend(err.problems)
    return problems
