"""IMAP inboxes polled for portal notifications, and their OAuth2 logins."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from leadrelay.routing.base import StrictModel
from leadrelay.routing.secrets import resolve_secret


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class OAuth2Config(StrictModel):
    """XOAUTH2 tokens from a token endpoint (Microsoft 365, Google Workspace: docs/inboxes.md)."""

    token_url: str
    client_id: str
    client_secret: SecretStr | None = None
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    scope: str | None = Field(default=None, description="e.g. https://outlook.office365.com/.default")
    grant: Literal["client_credentials", "refresh_token"] = "client_credentials"
    refresh_token: SecretStr | None = None
    refresh_token_env: str | None = None
    refresh_token_file: Path | None = None
    device_authorization_url: str | None = Field(
        default=None,
        description="for `leadrelay inbox authorize` (device code, RFC 8628; Microsoft 365: "
        "https://login.microsoftonline.com/<tenant>/oauth2/v2.0/devicecode)",
    )
    authorization_url: str | None = Field(
        default=None,
        description="for `leadrelay inbox authorize --flow loopback` (installed app; Google: "
        "https://accounts.google.com/o/oauth2/v2/auth)",
    )

    @field_validator("token_url", "device_authorization_url", "authorization_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return value
        url = urlsplit(value)
        if url.scheme == "https" or (url.scheme == "http" and _loopback(url.hostname)):
            return value
        raise ValueError(f"{value!r} must be an https:// URL (http:// only on a loopback host)")

    @property
    def authorizable(self) -> bool:
        """``leadrelay inbox authorize`` can get (and store in the ledger) a refresh token."""
        return bool(self.device_authorization_url or self.authorization_url)

    @model_validator(mode="after")
    def _grant_needs(self) -> OAuth2Config:
        if self.grant == "refresh_token" and not (
            self.refresh_token or self.refresh_token_env or self.refresh_token_file or self.authorizable
        ):
            raise ValueError(
                "grant refresh_token needs refresh_token, refresh_token_env or refresh_token_file, or "
                "device_authorization_url or authorization_url for `leadrelay inbox authorize`"
            )
        if self.grant == "client_credentials" and not (
            self.client_secret or self.client_secret_env or self.client_secret_file
        ):
            raise ValueError(
                "grant client_credentials needs client_secret, client_secret_env or client_secret_file"
            )
        return self

    def resolved_client_secret(self, where: str) -> SecretStr | None:
        return resolve_secret(
            self.client_secret, self.client_secret_env, self.client_secret_file, f"{where}.client_secret"
        )

    def resolved_refresh_token(self, where: str) -> SecretStr | None:
        return resolve_secret(
            self.refresh_token, self.refresh_token_env, self.refresh_token_file, f"{where}.refresh_token"
        )


class InboxConfig(StrictModel):
    """An IMAP mailbox polled for portal notifications (docs/inboxes.md)."""

    host: str
    port: int = Field(default=993, description="default 993 with tls, 143 otherwise")
    tls: bool = True
    starttls: bool = False
    ca_file: Path | None = Field(default=None, description="CA bundle to trust instead of the system's")
    username: str
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    oauth2: OAuth2Config | None = None
    folder: str = "INBOX"
    processed_folder: str | None = Field(default=None, description="MOVE here once recorded, else flag Seen")
    channel: str | None = Field(default=None, description="channel when sender and content don't tell")
    timeout_seconds: float = Field(default=30.0, gt=0)
    poll_interval_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=50, ge=1, le=1000, description="messages fetched per round trip")
    trusted_authserv_ids: list[str] = Field(
        default_factory=list,
        description="authserv-ids of the receiving servers whose Authentication-Results are believed "
        "(e.g. mx.google.com; docs/inboxes.md)",
    )
    trusted_forwarders: list[str] = Field(
        default_factory=list,
        description="your own domains whose authenticated mail (a colleague's forward) is trusted for "
        "every channel",
    )

    @model_validator(mode="before")
    @classmethod
    def _tls_defaults(cls, data: Any) -> Any:
        """``starttls: true`` alone means no IMAPS; the port follows the mode."""
        if not isinstance(data, dict):
            return data
        tls = data.get("tls", not data.get("starttls", False))
        return {"port": 993 if tls else 143, **data, "tls": tls}

    @model_validator(mode="after")
    def _consistent(self) -> InboxConfig:
        if self.tls and self.starttls:
            raise ValueError("set tls (IMAPS, port 993) or starttls (port 143), not both")
        if not (self.tls or self.starttls or _loopback(self.host)):
            raise ValueError(
                "plain IMAP would send the password in clear: set tls: true or starttls: true "
                "(plain is allowed on a loopback host only)"
            )
        has_password = bool(self.password or self.password_env or self.password_file)
        if has_password == (self.oauth2 is not None):
            raise ValueError("give password, password_env or password_file, or an oauth2 block (exactly one)")
        if self.processed_folder is not None and self.processed_folder == self.folder:
            raise ValueError("processed_folder must differ from folder")
        return self

    def resolved_password(self, where: str) -> SecretStr | None:
        return resolve_secret(self.password, self.password_env, self.password_file, f"{where}.password")
