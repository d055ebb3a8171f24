"""Options of the Nexudus sandbox: start-up options and the settings switchable at runtime."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_USERNAME = "sandbox@leadrelay.local"
DEFAULT_PASSWORD = "sandbox"  # noqa: S105 - the documented login of a local, in-memory sandbox
DEFAULT_TOKEN_EXPIRES_IN = 604_799  # seconds, as Nexudus answers
DEFAULT_REFRESH_EXPIRES_IN = 15 * 86_400  # Nexudus refresh tokens live ~15 days

ThrottleStatus = Literal[409, 429]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TenantSpec(_Strict):
    """A Nexudus account (login) the sandbox knows; ``seed`` adds the demo locations and brokers."""

    username: str = Field(min_length=1)
    password: str = Field(min_length=1)
    totp: str | None = Field(default=None, description="when set, the password grant requires this code")
    seed: bool = True


class Limits(_Strict):
    """Throttling and the per-location opportunity limit (``PUT /_sandbox/limits``)."""

    enabled: bool = True
    speed: float = Field(default=1.0, gt=0, description="every window and interval is `speed` times shorter")
    throttle_status: ThrottleStatus = 409
    location_limit: int = Field(default=5_000, ge=0, description="opportunities per location (business)")


class Quirks(_Strict):
    """Observed Nexudus behaviours, off by default (``PUT /_sandbox/quirks``)."""

    soft_fail_probability: float = Field(
        default=0.0, ge=0, le=1, description="share of writes answered 200 WasSuccessful:false, not performed"
    )
    validation_as_200: bool = Field(default=False, description="validation failures answer 200, not 400")


class TokenSettings(_Strict):
    """Lifetimes of the tokens issued from now on (``PUT /_sandbox/tokens``)."""

    expires_in: int = Field(default=DEFAULT_TOKEN_EXPIRES_IN, ge=1)
    refresh_expires_in: int = Field(default=DEFAULT_REFRESH_EXPIRES_IN, ge=1)


def _default_tenants() -> list[TenantSpec]:
    return [TenantSpec(username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD)]


class SandboxOptions(_Strict):
    """How a sandbox starts; ``POST /_sandbox/reset`` returns to exactly this."""

    limits_enabled: bool = True
    speed: float = Field(default=1.0, gt=0)
    throttle_status: ThrottleStatus = 409
    location_limit: int = Field(default=5_000, ge=0)
    token_expires_in: int = Field(default=DEFAULT_TOKEN_EXPIRES_IN, ge=1)
    refresh_expires_in: int = Field(default=DEFAULT_REFRESH_EXPIRES_IN, ge=1)
    tenants: list[TenantSpec] = Field(default_factory=_default_tenants, min_length=1)
    quirks: Quirks = Field(default_factory=Quirks)
    request_log_size: int = Field(default=10_000, ge=1, description="entries kept by GET /_sandbox/requests")

    def limits(self) -> Limits:
        return Limits(
            enabled=self.limits_enabled,
            speed=self.speed,
            throttle_status=self.throttle_status,
            location_limit=self.location_limit,
        )

    def token_settings(self) -> TokenSettings:
        return TokenSettings(expires_in=self.token_expires_in, refresh_expires_in=self.refresh_expires_in)
