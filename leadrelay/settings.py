"""Process settings: the 12-factor environment, read once and validated at start.

With no database or broker configured, leadrelay runs embedded: a SQLite ledger
and kombu's SQLAlchemy transport on SQLite files under ``LEADRELAY_DATA_DIR``.

Every secret may instead be read from a file named by its ``*_FILE`` twin
(``LEADRELAY_ADMIN_TOKEN_FILE``, ``NEXUDUS_PASSWORD_FILE``, …): the file is read
once, at start.
"""

from __future__ import annotations

import re
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from leadrelay.secret_files import read_secret_file

ADMIN_ROLES = ("viewer", "operator")
MIN_ADMIN_TOKEN_CHARS = 16
_ADMIN_NAME = re.compile(r"[\w.@+-]{1,80}")


class AdminUser(NamedTuple):
    """One named admin from ``LEADRELAY_ADMIN_USERS`` (or the single ``LEADRELAY_ADMIN_TOKEN``)."""

    name: str
    role: str  # viewer | operator
    token: SecretStr


def parse_admin_users(text: str) -> tuple[AdminUser, ...]:
    """``name:role:token`` entries, one per line or separated by commas; the message never shows a token."""
    users: list[AdminUser] = []
    for number, entry in enumerate((e.strip() for e in text.replace(",", "\n").splitlines()), 1):
        if not entry or entry.startswith("#"):
            continue
        name, _, rest = entry.partition(":")
        role, _, token = rest.partition(":")
        where = f"LEADRELAY_ADMIN_USERS entry {number} ({name.strip() or 'no name'})"
        if not _ADMIN_NAME.fullmatch(name.strip()):
            raise ValueError(f"{where}: give name:role:token, the name in letters, digits, . _ - @ +")
        if role.strip() not in ADMIN_ROLES:
            raise ValueError(f"{where}: the role must be viewer or operator")
        if len(token.strip()) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(f"{where}: the token must be at least {MIN_ADMIN_TOKEN_CHARS} characters")
        users.append(AdminUser(name.strip(), role.strip(), SecretStr(token.strip())))
    if len({u.name for u in users}) < len(users):
        raise ValueError("LEADRELAY_ADMIN_USERS: a name is given twice")
    if len({u.token.get_secret_value() for u in users}) < len(users):
        raise ValueError("LEADRELAY_ADMIN_USERS: two users share a token; each needs its own")
    return tuple(users)


DEFAULT_RETRY_SCHEDULE = (0, 30, 120, 600, 1800, 7200, 21600, 43200, 86400)
# setting -> (its *_file twin, the variable an operator sets)
SECRET_FILES = {
    "admin_token": ("admin_token_file", "LEADRELAY_ADMIN_TOKEN_FILE"),
    "admin_users": ("admin_users_file", "LEADRELAY_ADMIN_USERS_FILE"),
    "nexudus_password": ("nexudus_password_file", "NEXUDUS_PASSWORD_FILE"),
    "database_url": ("database_url_file", "LEADRELAY_DATABASE_URL_FILE"),
    "broker_url": ("broker_url_file", "LEADRELAY_BROKER_URL_FILE"),
    "alert_webhook_url": ("alert_webhook_url_file", "LEADRELAY_ALERT_WEBHOOK_URL_FILE"),
    "smtp_password": ("smtp_password_file", "LEADRELAY_SMTP_PASSWORD_FILE"),
}


class AdminSettings(BaseSettings):
    """Who may use the admin page and API (docs/admin.md), and the door log it shows."""

    model_config = SettingsConfigDict(env_prefix="LEADRELAY_", extra="ignore", populate_by_name=True)

    admin_token: SecretStr | None = Field(
        default=None, description="the admin API's and page's token: one operator named admin"
    )
    admin_token_file: Path | None = None
    admin_users: SecretStr | None = Field(
        default=None,
        description="named admins, name:role:token (role: viewer or operator), by line or comma-separated",
    )
    admin_users_file: Path | None = None
    admin_sso: Literal["off", "oauth2-proxy", "cloudflare-access"] = Field(
        default="off",
        description="believe the identity headers of this SSO proxy (from admin_trusted_proxies only)",
    )
    admin_trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="addresses or networks of the SSO proxy, comma-separated"
    )
    admin_sso_roles: str = Field(
        default="",
        description="each SSO identity's role: e-mail=role, *@domain=role, comma-separated (others: refused)",
    )
    admin_session_seconds: int = Field(default=8 * 3600, ge=60, description="an admin session's lifetime")
    admin_login_attempts: int = Field(
        default=10, ge=1, description="failed logins per address (and per user name) within the window"
    )
    admin_login_window_seconds: int = Field(default=900, ge=1, description="the failed-login window")
    door_log_size: int = Field(
        default=200, ge=1, description="rejected webhook requests kept per channel (the admin's door log)"
    )
    test_lead_url: str | None = Field(
        default=None,
        description="where the admin's 'send a test lead' posts (the door's base URL; default public_url)",
    )

    nexudus_web_opportunity_url: str = Field(
        default="https://dashboard.nexudus.com/crm/opportunities/{id}",
        description="the admin's deep link to an opportunity in the Nexudus web dashboard ({id}: its Id)",
    )
    nexudus_web_customer_url: str = Field(
        default="https://dashboard.nexudus.com/operations/customers/{id}",
        description="the admin's deep link to a customer (coworker) in the Nexudus dashboard ({id}: its Id)",
    )

    @field_validator("admin_trusted_proxies", mode="before")
    @classmethod
    def _addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("admin_trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for part in value:
            try:
                ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not an address or network") from None
        return value

    @field_validator("admin_sso_roles")
    @classmethod
    def _sso_roles(cls, value: str) -> str:
        for entry in filter(None, (e.strip() for e in value.split(","))):
            who, _, role = entry.rpartition("=")
            if not who.strip() or role.strip() not in ADMIN_ROLES:
                raise ValueError(f"{entry!r}: give e-mail=viewer|operator or *@domain=viewer|operator")
        return value

    def admin_identities(self) -> tuple[AdminUser, ...]:
        """Who may log in with a token: the named users, and ``admin`` for LEADRELAY_ADMIN_TOKEN."""
        users = parse_admin_users(self.admin_users.get_secret_value()) if self.admin_users else ()
        if self.admin_token is not None and self.admin_token.get_secret_value():
            if any(u.name == "admin" for u in users):
                raise ValueError(
                    "LEADRELAY_ADMIN_USERS names an 'admin': it would shadow LEADRELAY_ADMIN_TOKEN"
                )
            if any(u.token == self.admin_token for u in users):
                raise ValueError("LEADRELAY_ADMIN_TOKEN is also a named user's token; each needs its own")
            users = (*users, AdminUser("admin", "operator", self.admin_token))
        return users


_SPREAD = (
    "a publish of leads goes out in at least this many messages (keep it at the workers' slots or more); "
    "past that, up to leads_per_message share one"
)
_FOLLOW_UP_WAIT = (
    "how long a follow-up (an update, a viewing, a withdrawal) waits for its enquiry to reach Nexudus "
    "before it becomes a dead letter (no_original)"
)
_BATCH_BYTES = (
    "an inbox batch is cut where its messages' bytes pass this (each batch: one fetch, one INSERT);"
    " a single bigger message is a batch of its own"
)


class Settings(AdminSettings):
    model_config = SettingsConfigDict(env_prefix="LEADRELAY_", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the ledger")
    broker_url: str | None = Field(default=None, description="Celery broker URL")
    config: Path | None = Field(default=None, description="routing YAML file")
    allow_demo_routing: bool = Field(
        default=False,
        description="with a real database and no LEADRELAY_CONFIG, use the embedded demo routing anyway "
        "(its webhook secrets are public: tests and throwaway set-ups only)",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="the receiver's public base URL, for the webhook URLs `leadrelay check` prints",
    )
    data_dir: Path = Field(default=Path(".leadrelay"), description="embedded-mode files")
    database_url_file: Path | None = None
    broker_url_file: Path | None = None

    nexudus_base_url: str = Field(
        default="https://spaces.nexudus.com",
        validation_alias=AliasChoices("NEXUDUS_BASE_URL", "LEADRELAY_NEXUDUS_BASE_URL"),
    )
    nexudus_username: str | None = Field(
        default=None, validation_alias=AliasChoices("NEXUDUS_USERNAME", "LEADRELAY_NEXUDUS_USERNAME")
    )
    nexudus_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("NEXUDUS_PASSWORD", "LEADRELAY_NEXUDUS_PASSWORD")
    )
    nexudus_password_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("NEXUDUS_PASSWORD_FILE", "LEADRELAY_NEXUDUS_PASSWORD_FILE"),
    )
    nexudus_timeout: float = Field(
        default=10.0, gt=0, description="seconds a whole Nexudus call may take (total, not per phase)"
    )
    write_landing_seconds: float = Field(
        default=30.0,
        ge=0,
        description="how long after its deadline an unanswered write may still land in Nexudus: "
        "a lookup waits that long before concluding a create did not happen",
    )
    budget_wait_seconds: float = Field(
        default=2.5,
        ge=0,
        description="longest a worker waits for the account's budget before handing the lead back",
    )

    max_body_bytes: int = Field(default=256 * 1024, gt=0, description="webhook bodies (413 above)")
    max_request_bytes: int = Field(default=1024 * 1024, gt=0, description="any other request body")
    max_header_bytes: int = Field(default=16 * 1024, gt=0, description="all request headers together")
    max_headers: int = Field(default=100, gt=0, description="request header lines")
    max_connections: int = Field(default=1000, gt=0, description="concurrent connections per receiver")
    receiver_ledger_connections: int = Field(
        default=16, gt=0, description="Postgres connections for webhook inserts, door log, per receiver"
    )
    max_message_bytes: int = Field(
        default=25 * 1024 * 1024,
        gt=0,
        description="a bigger e-mail is not read: a parse_error dead letter with its raw bytes kept "
        "(from IMAP, only the first max_message_bytes + 1 bytes are fetched)",
    )
    max_batch_bytes: int = Field(default=64 * 1024 * 1024, gt=0, description=_BATCH_BYTES)
    max_part_text_bytes: int = Field(
        default=1024 * 1024, gt=0, description="decoded text read from each MIME part (its beginning)"
    )
    max_mail_text_bytes: int = Field(
        default=2 * 1024 * 1024, gt=0, description="decoded text read from one message's parts together"
    )
    webhook_tolerance_seconds: int = Field(default=300, gt=0)
    routing_watch_seconds: float = Field(
        default=5.0,
        ge=0,
        description="how often the receiver looks for a changed routing file (0: SIGHUP only)",
    )
    lease_seconds: int = Field(default=60, ge=5, description="how long a worker owns a lead")
    requeue_after_seconds: int = Field(default=60, ge=1, description="re-enqueue a lost message after")
    follow_up_wait_seconds: float = Field(default=259200.0, ge=0, description=_FOLLOW_UP_WAIT)
    follow_up_recheck_seconds: float = Field(
        default=60.0,
        gt=0,
        description="how often a waiting follow-up looks for its enquiry again (it is also woken at "
        "once when the enquiry is delivered)",
    )
    sweep_interval_seconds: float = Field(default=1.0, gt=0)
    publish_spread: int = Field(default=32, ge=1, description=_SPREAD)
    leads_per_message: int = Field(default=8, ge=1, le=100, description="most leads in one message")
    retry_schedule: Annotated[tuple[int, ...], NoDecode] = Field(default=DEFAULT_RETRY_SCHEDULE, min_length=1)
    retry_jitter: float = Field(default=0.1, ge=0, le=1, description="± fraction of each delay")
    max_unfinished_runs: int = Field(
        default=5,
        ge=1,
        description="a lead whose processing started this many times without finishing (a crash, a kill, "
        "a bug) becomes a dead letter",
    )

    metrics_cache_seconds: float = Field(default=5.0, ge=0, description="ledger numbers on /metrics")
    ready_max_backlog_seconds: int | None = Field(
        default=3600, gt=0, description="/readyz fails when the oldest undelivered lead is older (off: none)"
    )
    ready_max_open_dead_letters: int | None = Field(
        default=100, ge=0, description="/readyz fails above this many open dead letters (off: none)"
    )

    alert_webhook_url: SecretStr | None = Field(default=None, description="POSTed JSON alerts")
    alert_webhook_url_file: Path | None = None
    alert_interval_seconds: float = Field(default=60.0, gt=0, description="how often beat checks")
    alert_backlog_seconds: int = Field(default=1800, gt=0, description="alert when a lead waits longer")
    alert_repeat_seconds: int = Field(default=6 * 3600, ge=0, description="remind while firing (0: never)")

    # speed to lead (docs/configuration.md, "Assignment and speed to lead"): e-mail to staff
    smtp_host: str | None = Field(default=None, description="SMTP server for staff notifications (off: none)")
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls on the plain port, tls from the start (465), or none"
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_password_file: Path | None = None
    smtp_from: str = Field(default="leadrelay@localhost", description="the notifications' From address")
    notify_interval_seconds: float = Field(
        default=30.0, gt=0, description="how often the scheduler sends notifications still owed"
    )

    inbox_stale_intervals: float = Field(
        default=2,
        gt=0,
        description="an inbox not read for this many poll intervals is stale: /readyz, alert inbox:<name>",
    )

    retention_days: int = Field(default=180, ge=0, description="purge personal data after (0: never)")

    scheduler_lease_seconds: float = Field(
        default=5.0,
        ge=1,
        description="how long the elected scheduler leads without renewing; another takes over after that",
    )
    ready_max_scheduler_lag_seconds: int | None = Field(
        default=30, gt=0, description="/readyz fails when no scheduler has swept for longer (off: none)"
    )
    alert_scheduler_lag_seconds: int = Field(
        default=120, gt=0, description="alert when no scheduler has swept for longer"
    )
    ready_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long a receiver reuses its last /readyz answer"
    )

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
        return value

    @field_validator("ready_max_backlog_seconds", "ready_max_open_dead_letters", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "off", "none"):
            return None
        return value

    @field_validator("ready_max_scheduler_lag_seconds", mode="before")
    @classmethod
    def _scheduler_lag_off(cls, value: object) -> object:
        return cls._off(value)

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        for name, (file_field, env) in SECRET_FILES.items():
            path = getattr(self, file_field)
            if path is None:
                continue
            if getattr(self, name) is not None:
                raise ValueError(f"{env}: the value is also set directly; give one of the two")
            value = read_secret_file(path, where=env)
            setattr(self, name, SecretStr(value) if name not in ("database_url", "broker_url") else value)
            setattr(self, file_field, None)  # read once: the value is what is kept
        self.admin_identities()  # a bad LEADRELAY_ADMIN_USERS stops the start, not the first login
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    def ledger_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'leadrelay.sqlite').resolve()}"

    def celery_broker_url(self) -> str:
        if self.broker_url:
            return self.broker_url
        return f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"

    def ensure_data_dir(self) -> None:
        if self.database_url is None or self.broker_url is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
