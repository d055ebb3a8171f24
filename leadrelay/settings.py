"""Process settings: the 12-factor environment, read once and validated at start.

With no database or broker configured, leadrelay runs embedded: a SQLite ledger
and kombu's SQLAlchemy transport on SQLite files under ``LEADRELAY_DATA_DIR``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_RETRY_SCHEDULE = (0, 30, 120, 600, 1800, 7200, 21600, 43200, 86400)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADRELAY_", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the ledger")
    broker_url: str | None = Field(default=None, description="Celery broker URL")
    config: Path | None = Field(default=None, description="routing YAML file")
    data_dir: Path = Field(default=Path(".leadrelay"), description="embedded-mode files")
    admin_token: SecretStr | None = None

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
    nexudus_timeout: float = Field(default=10.0, gt=0, description="seconds per Nexudus call")
    budget_wait_seconds: float = Field(
        default=2.5,
        ge=0,
        description="longest a worker waits for the account's budget before handing the lead back",
    )

    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    webhook_tolerance_seconds: int = Field(default=300, gt=0)
    lease_seconds: int = Field(default=60, ge=5, description="how long a worker owns a lead")
    requeue_after_seconds: int = Field(default=60, ge=1, description="re-enqueue a lost message after")
    sweep_interval_seconds: float = Field(default=1.0, gt=0)
    retry_schedule: Annotated[tuple[int, ...], NoDecode] = Field(default=DEFAULT_RETRY_SCHEDULE, min_length=1)
    retry_jitter: float = Field(default=0.1, ge=0, le=1, description="± fraction of each delay")

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
        return value

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
