"""Channels: the portals leads come from, how their webhooks are signed and how they are read."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from leadrelay.canonical import LeadKind, field_paths
from leadrelay.intake.signatures import decode_secret
from leadrelay.nexudus.enums import LeadSource
from leadrelay.routing.base import RoutingError, StrictModel
from leadrelay.routing.follow_ups import FollowUpKind
from leadrelay.routing.mapping import MappingConfig
from leadrelay.routing.patterns import nested_repeat
from leadrelay.routing.secrets import resolve_secret

TOKEN_MIN_LENGTH = 32
TOKEN_MAX_LENGTH = 256
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9._~-]+$")  # URL-safe: a token may be a path segment
_HOW_TO_MAKE_ONE = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'


def token_problem(token: str) -> str | None:
    """Why ``token`` is not a usable bearer or path token (never quoting it), or None."""
    if len(token) < TOKEN_MIN_LENGTH:
        return (
            f"a token must be at least {TOKEN_MIN_LENGTH} characters (this one has {len(token)}); "
            f"make one with: {_HOW_TO_MAKE_ONE}"
        )
    if len(token) > TOKEN_MAX_LENGTH:
        return f"a token must be at most {TOKEN_MAX_LENGTH} characters (this one has {len(token)})"
    if not _TOKEN_CHARS.match(token):
        return (
            f"a token may hold only letters, digits and . _ ~ - (URL-safe); make one with: {_HOW_TO_MAKE_ONE}"
        )
    return None


class WebhookConfig(StrictModel):
    """How a channel proves its webhooks come from the partner.

    ``standard-webhooks``: ``webhook-id``/``-timestamp``/``-signature`` headers.
    ``hmac-sha256``: ``X-Signature: sha256=<hex>`` of the body (header name
    configurable), the delivery id from ``id_header`` when the partner sends one;
    with ``timestamp_header`` the signature covers ``"{timestamp}.{body}"`` and the
    timestamp must be within ``webhook_tolerance_seconds`` of now (replay protection).
    ``token``: for senders that cannot compute an HMAC (Zapier, Make, website forms):
    a long random token, in ``Authorization: Bearer <token>`` (``token_in: header``) or
    as the last segment of the URL, ``/webhooks/<channel>/<token>`` (``token_in: path``).
    ``secret``/``token`` (inline, ``*_env`` or ``*_file``) may hold several values separated
    by spaces, so a key can be rotated without downtime.
    """

    scheme: Literal["standard-webhooks", "hmac-sha256", "token"] = "standard-webhooks"
    secret: SecretStr | None = None
    secret_env: str | None = None
    secret_file: Path | None = None
    signature_header: str = "X-Signature"
    timestamp_header: str | None = Field(
        default=None, description="hmac-sha256: the header with Unix seconds, signed as '{timestamp}.{body}'"
    )
    id_header: str | None = None
    token: SecretStr | None = None
    token_env: str | None = None
    token_file: Path | None = None
    token_in: Literal["header", "path"] = Field(
        default="header",
        description="token: 'header' (Authorization: Bearer) or 'path' (/webhooks/<channel>/<token>)",
    )

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        for part in value.get_secret_value().split() if value is not None else []:
            problem = token_problem(part)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _scheme_fields(self) -> WebhookConfig:
        token_given = self.token is not None or self.token_env is not None or self.token_file is not None
        secret_given = self.secret is not None or self.secret_env is not None or self.secret_file is not None
        if self.scheme == "token" and secret_given:
            raise ValueError("the token scheme takes token, token_env or token_file, not secret")
        if self.scheme != "token" and token_given:
            raise ValueError(f"token, token_env and token_file are for scheme: token, not {self.scheme}")
        if self.timestamp_header is not None and self.scheme != "hmac-sha256":
            raise ValueError("timestamp_header is for scheme: hmac-sha256 (Standard Webhooks signs its own)")
        return self

    def keys(self, where: str) -> list[bytes]:
        """The HMAC keys, decoded (``whsec_`` secrets are base64 after the prefix), or the tokens."""
        if self.scheme == "token":
            return self._tokens(where)
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

    def _tokens(self, where: str) -> list[bytes]:
        value = resolve_secret(self.token, self.token_env, self.token_file, f"{where}.token")
        if value is None:
            raise RoutingError("routing", [f"{where}: give token, token_env or token_file"])
        parts = value.get_secret_value().split()
        if not parts:
            raise RoutingError("routing", [f"{where}.token: empty"])
        problems = [f"{where}.token: {problem}" for part in parts if (problem := token_problem(part))]
        if problems:
            raise RoutingError("routing", problems)
        return [part.encode() for part in parts]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _by_language(value: Any) -> Any:
    """Labels grouped by language (``{fr: [Postes], nl: [Werkplekken]}``) as one list; any
    other value as given. The language keys are for the reader: every label is read in any mail."""
    if not isinstance(value, dict):
        return value
    return [label for labels in value.values() for label in (_as_list(labels) or [])]


_READABLE_FIELDS = field_paths() - {"channel", "lead_source", "requirements", "utm"}


class EventsConfig(StrictModel):
    """Webhook event types: which announce a lead (and its kind), which follow one up, which are ignored."""

    paths: list[str] = Field(default_factory=list, description="dotted paths holding the event type")
    handled: dict[str, LeadKind | None] = Field(default_factory=dict)
    ignored: list[str] = Field(default_factory=list)
    follow_ups: dict[str, FollowUpKind] = Field(
        default_factory=dict,
        description="event type -> updated | viewing_booked | viewing_cancelled | withdrawn",
    )

    @field_validator("paths", "ignored", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)


def _readable(value: dict[str, list[str]]) -> dict[str, list[str]]:
    """``value``, when each of its keys is a field an adapter can read."""
    unknown = ", ".join(sorted(set(value) - _READABLE_FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown} (fields: {', '.join(sorted(_READABLE_FIELDS))})")
    return value


def _regex_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as err:
        return f"{pattern!r} is not a regular expression: {err}"
    if nested_repeat(pattern):
        return (
            f"{pattern!r} repeats a repetition (like (a+)+): on a long line of mail it can take "
            "minutes; write it with one repetition, e.g. (a+) or (?:ab)+"
        )
    return None


class DigestConfig(StrictModel):
    """How a digest (one mail, several leads) is cut into one block per lead (docs/channels.md)."""

    separator: str | None = Field(
        default=None,
        description="regex: a line it matches starts a lead's block (default: rules and numbered headings)",
    )

    @field_validator("separator")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        problem = _regex_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value


class AttachmentsConfig(StrictModel):
    """How a CSV or XLSX of leads attached to a mail is read: one lead per row (docs/channels.md)."""

    columns: dict[str, list[str]] = Field(
        default_factory=dict, description="field path -> column names (compared without case or punctuation)"
    )
    header_row: int = Field(default=1, ge=1, le=50, description="the row that names the columns (1 = first)")

    @field_validator("columns", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return {k: _as_list(v) for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return _readable(value)


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
    follow_up_subjects: dict[str, FollowUpKind] = Field(
        default_factory=dict, description="regex -> follow-up kind: mail that follows up an enquiry"
    )
    digest: DigestConfig = Field(default_factory=DigestConfig)
    attachments: AttachmentsConfig = Field(default_factory=AttachmentsConfig)

    @field_validator("senders", "ignored_subjects", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("labels", "json_paths", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return {k: _by_language(_as_list(v)) for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("labels", "json_paths")
    @classmethod
    def _known_fields(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return _readable(value)

    @field_validator("reference_pattern", "listing_pattern", "ignored_subjects", "follow_up_subjects")
    @classmethod
    def _compiles(cls, value: Any) -> Any:
        for pattern in list(value) if isinstance(value, dict) else _as_list(value) or []:
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
    mapping: MappingConfig | None = None
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
