"""Channels: the portals leads come from, how their webhooks are signed and how they are read."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from leadrelay.canonical import LeadKind, field_paths
from leadrelay.intake.signatures import decode_secret
from leadrelay.nexudus.enums import LeadSource
from leadrelay.routing.base import RoutingError, StrictModel
from leadrelay.routing.patterns import nested_repeat
from leadrelay.routing.secrets import resolve_secret


class WebhookConfig(StrictModel):
    """How a channel signs its webhooks.

    ``standard-webhooks``: ``webhook-id``/``-timestamp``/``-signature`` headers.
    ``hmac-sha256``: ``X-Signature: sha256=<hex>`` of the body (header name
    configurable), the delivery id from ``id_header`` when the partner sends one.
    ``secret``/``secret_env``/``secret_file`` may hold several secrets separated by spaces, so a
    key can be rotated without downtime.
    """

    scheme: Literal["standard-webhooks", "hmac-sha256"] = "standard-webhooks"
    secret: SecretStr | None = None
    secret_env: str | None = None
    secret_file: Path | None = None
    signature_header: str = "X-Signature"
    id_header: str | None = None

    def keys(self, where: str) -> list[bytes]:
        """The HMAC keys, decoded (``whsec_`` secrets are base64 after the prefix)."""
        value = resolve_secret(self.secret, self.secret_env, self.secret_file, f"{where}.secret")
        if value is None:
            raise RoutingError("routing", [f"{where}: give secret, secret_env or secret_file"])
        parts = value.get_secret_value().replace(",", " ").split()
        if self.scheme == "hmac-sha256":
            return [part.encode() for part in parts]
        try:
            return [decode_secret(part) for part in parts]
        except ValueError as err:
            raise RoutingError("routing", [f"{where}.secret: {err}"]) from None


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


_READABLE_FIELDS = field_paths() - {"channel", "lead_source", "requirements", "utm"}


class EventsConfig(StrictModel):
    """Webhook event types: which announce a lead (and its kind), which are ignored."""

    paths: list[str] = Field(default_factory=list, description="dotted paths holding the event type")
    handled: dict[str, LeadKind | None] = Field(default_factory=dict)
    ignored: list[str] = Field(default_factory=list)

    @field_validator("paths", "ignored", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)


class ParseConfig(StrictModel):
    """How the configurable adapter reads a portal without code (docs/channels.md)."""

    labels: dict[str, list[str]] = Field(default_factory=dict, description="field path -> label synonyms")
    senders: list[str] = Field(default_factory=list, description="sender domains or address patterns")
    json_paths: dict[str, list[str]] = Field(default_factory=dict, description="field path -> JSON paths")
    reference_pattern: str | None = None
    listing_pattern: str | None = None
    events: EventsConfig = Field(default_factory=EventsConfig)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    dayfirst: bool | None = None
    broker_name: str | None = None
    ignored_subjects: list[str] = Field(default_factory=list, description="regexes: mail that is not a lead")

    @field_validator("senders", "ignored_subjects", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("labels", "json_paths", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return {k: _as_list(v) for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("labels", "json_paths")
    @classmethod
    def _known_fields(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = ", ".join(sorted(set(value) - _READABLE_FIELDS))
        if unknown:
            raise ValueError(f"unknown field {unknown} (fields: {', '.join(sorted(_READABLE_FIELDS))})")
        return value

    @field_validator("reference_pattern", "listing_pattern", "ignored_subjects")
    @classmethod
    def _compiles(cls, value: Any) -> Any:
        for pattern in _as_list(value) or []:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"{pattern!r} is not a regular expression: {err}") from None
            if nested_repeat(pattern):
                raise ValueError(
                    f"{pattern!r} repeats a repetition (like (a+)+): on a long line of mail it can take "
                    "minutes; write it with one repetition, e.g. (a+) or (?:ab)+"
                )
        return value

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ChannelConfig(StrictModel):
    lead_source: int
    agent_id: int | None = None
    adapter: str | None = Field(default=None, description="registered adapter name, or 'configurable'")
    parse: ParseConfig | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    label: str | None = Field(default=None, description="prefix of the opportunity Name tag")
    webhook: WebhookConfig | None = None
    protection_days: int | None = Field(default=None, ge=0)
    verify_sender: bool | None = Field(
        default=None,
        description="deliver this channel's mail only when its sender domain passed DKIM/SPF/DMARC "
        "(docs/inboxes.md); default: on for the built-in portals, off for configurable channels",
    )
    sender_domains: list[str] | None = Field(
        default=None,
        description="the domains whose authenticated mail this channel trusts; default: the portal's "
        "known sender domains and parse.senders",
    )

    @field_validator("sender_domains", mode="before")
    @classmethod
    def _domains(cls, value: Any) -> Any:
        value = _as_list(value)
        if isinstance(value, list):
            return [
                d.rpartition("@")[2].lstrip("*.").strip().lower() if isinstance(d, str) else d for d in value
            ]
        return value

    @field_validator("lead_source")
    @classmethod
    def _known_source(cls, value: int) -> int:
        try:
            LeadSource(value)
        except ValueError:
            raise ValueError(f"{value} is not a Nexudus LeadSource (see NEXUDUS.md, Enums)") from None
        return value

    @field_validator("country", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value
