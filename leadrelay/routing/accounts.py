"""Nexudus accounts, their limits, and the locations (businesses) leads go to."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator

from leadrelay.routing.base import RoutingError, StrictModel
from leadrelay.routing.follow_ups import FollowUpOptions
from leadrelay.routing.mapping import MappingConfig
from leadrelay.routing.secrets import resolve_secret


class NexudusLimits(StrictModel):
    """Documented per-account limits (developers.nexudus.com/reference/api-limitations)."""

    min_interval_ms: int = Field(default=100, ge=0)
    requests_per_minute: int = Field(default=120, gt=0)
    requests_per_hour: int = Field(default=5000, gt=0)
    requests_per_day: int = Field(default=200_000, gt=0)
    writes_per_minute: int = Field(default=60, gt=0)
    writes_per_day: int = Field(default=5000, gt=0)
    safety: float = Field(default=0.97, gt=0, le=1, description="fraction of each limit we aim to use")
    concurrent_deliveries: int = Field(
        default=2, ge=1, description="leads of this account delivered at once (the rest wait in the ledger)"
    )
    clock_speed: float = Field(
        default=1.0,
        gt=0,
        description="only for a sandbox on a sped-up clock: every window is this much shorter",
    )


class AccountConfig(StrictModel):
    base_url: str | None = None
    username: str | None = None
    username_env: str | None = None
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    limits: NexudusLimits = Field(default_factory=NexudusLimits)
    protection_days: int | None = Field(default=None, ge=0, description="broker protection window override")
    follow_ups: FollowUpOptions = Field(default_factory=FollowUpOptions)
    mapping: MappingConfig | None = None

    def resolved_username(self, where: str, fallback: str | None) -> str | None:
        if self.username:
            return self.username
        if self.username_env:
            value = os.environ.get(self.username_env)
            if not value:
                raise RoutingError("routing", [f"{where}.username_env: {self.username_env} is not set"])
            return value
        return fallback

    def resolved_password(self, where: str, fallback: SecretStr | None) -> SecretStr | None:
        return (
            resolve_secret(self.password, self.password_env, self.password_file, f"{where}.password")
            or fallback
        )


class LocationConfig(StrictModel):
    account: str
    business_id: int
    board_column_id: int
    country: str = Field(default="GB", pattern=r"^[A-Z]{2}$")
    country_id: int
    timezone_id: int
    responsible_id: int | None = None
    follow_up_hours: int | None = Field(default=None, ge=0)
    listings: dict[str, list[str]] = Field(default_factory=dict)
    agent_ids: dict[str, int] = Field(default_factory=dict, description="per-channel AgentId override")
    mapping: MappingConfig | None = None
    by_channel: dict[str, MappingConfig] = Field(
        default_factory=dict, description="per-channel mapping at this location (e.g. its column)"
    )

    @field_validator("country", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("listings", mode="before")
    @classmethod
    def _text_ids(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [str(i) for i in (v if isinstance(v, list) else [v])] for k, v in value.items()}
        return value
