"""Process settings: the 12-factor environment, read once and validated at start.

With no database or broker configured, leadrelay runs embedded: a SQLite ledger
and kombu's SQLAlchemy transport on SQLite files under ``LEADRELAY_DATA_DIR``.

Every secret may instead be read from a file named by its ``*_FILE`` twin
(``LEADRELAY_ADMIN_TOKEN_FILE``, ``NEXUDUS_PASSWORD_FILE``, …): the file is read
once, at start.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from leadrelay.secret_files import read_secret_file

DEFAULT_RETRY_SCHEDULE = (0, 30, 120, 600, 1800, 7200, 21600, 43200, 86400)
# setting -> (its *_file twin, the variable an operator sets)
SECRET_FILES = {
    "admin_token": ("admin_token_file", "LEADRELAY_ADMIN_TOKEN_FILE"),
    "nexudus_password": ("nexudus_password_file", "NEXUDUS_PASSWORD_FILE"),
    "database_url": ("database_url_file", "LEADRELAY_DATABASE_URL_FILE"),
    "broker_url": ("broker_url_file", "LEADRELAY_BROKER_URL_FILE"),
    "alert_webhook_url": ("alert_webhook_url_file", "LEADRELAY_ALERT_WEBHOOK_URL_FILE"),
}


class Settings(BaseSettings):
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
    admin_token: SecretStr | None = None
    admin_token_file: Path | None = None
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
    nexudus_web_opportunity_url: str = Field(
        default="https://dashboard.nexudus.com/crm/opportunities/{id}",
        description="the admin's deep link to an opportunity in the Nexudus web dashboard ({id}: its Id)",
    )
    nexudus_web_customer_url: str = Field(
        default="https://dashboard.nexudus.com/operations/customers/{id}",
        description="the admin's deep link to a customer (coworker) in the Nexudus dashboard ({id}: its Id)",
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
        default=16, gt=0, description="Postgres connections for the webhook insert, per receiver process"
    )
    max_message_bytes: int = Field(
        default=25 * 1024 * 1024,
        gt=0,
        description="a bigger e-mail is not read: a parse_error dead letter with its raw bytes kept "
        "(from IMAP, only the first max_message_bytes + 1 bytes are fetched)",
    )
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
    sweep_interval_seconds: float = Field(default=1.0, gt=0)
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
