"""The routing file: Nexudus accounts, locations, channels and inboxes (DESIGN.md §5).

Loaded once at start and validated whole; every problem is reported with the
dotted key it is about (``channels.hubblehq.webhook.secret_env: …``), so an
operator can fix the file without reading code. Secrets may be inline, named by
``*_env`` (an environment variable) or by ``*_file`` (a file holding the value
alone, e.g. a Docker secret); they are resolved when first needed and never logged.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from re import _constants as sre_constants  # the parser re.compile uses
from re import _parser as sre_parser
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from leadrelay.canonical import LeadKind, field_paths
from leadrelay.intake.signatures import decode_secret
from leadrelay.nexudus.enums import LeadSource
from leadrelay.secret_files import SecretFileError, read_secret_file

EMBEDDED_ROUTING = "default_routing.yaml"


class RoutingError(Exception):
    """The routing file is unusable; ``problems`` lists ``key: what is wrong``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _secret(
    inline: SecretStr | None, env_name: str | None, file: Path | None, where: str
) -> SecretStr | None:
    """A secret given inline, by ``*_env`` (a variable's name) or by ``*_file`` (a file's path)."""
    if inline is not None and inline.get_secret_value():
        return inline
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise RoutingError("routing", [f"{where}_env: environment variable {env_name} is not set"])
        return SecretStr(value)
    if file is not None:
        try:
            return SecretStr(read_secret_file(file, where=f"{where}_file"))
        except SecretFileError as err:
            raise RoutingError("routing", [str(err)]) from None
    return None


class NexudusLimits(_Strict):
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


class AccountConfig(_Strict):
    base_url: str | None = None
    username: str | None = None
    username_env: str | None = None
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    limits: NexudusLimits = Field(default_factory=NexudusLimits)
    protection_days: int | None = Field(default=None, ge=0, description="broker protection window override")

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
        return _secret(self.password, self.password_env, self.password_file, f"{where}.password") or fallback


class LocationConfig(_Strict):
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


class WebhookConfig(_Strict):
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
        value = _secret(self.secret, self.secret_env, self.secret_file, f"{where}.secret")
        if value is None:
            raise RoutingError("routing", [f"{where}: give secret, secret_env or secret_file"])
        parts = value.get_secret_value().replace(",", " ").split()
        if self.scheme == "hmac-sha256":
            return [part.encode() for part in parts]
        try:
            return [decode_secret(part) for part in parts]
        except ValueError as err:
            raise RoutingError("routing", [f"{where}.secret: {err}"]) from None


def _nested_repeat(pattern: str) -> bool:
    """An unbounded repetition inside another (``(a+)+``, ``(\\w*\\s)*``): backtracking blows up.

    "Star height" above one, the rule safe-regex linters use, read with the stdlib's
    own pattern parser (``re._parser``, private but what ``re.compile`` itself uses).
    Overlapping alternatives under one repetition (``(a|a)+``) are not caught: this
    catches the common mistake, not every one.
    """
    return _star_height(sre_parser.parse(pattern)) > 1


def _star_height(items: Any) -> int:
    """How deeply unbounded repetitions nest in a parsed pattern."""
    height = 0
    for op, arg in items:
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            _, most, body = arg
            height = max(height, _star_height(body) + (most == sre_constants.MAXREPEAT))
        elif op is sre_constants.SUBPATTERN:
            height = max(height, _star_height(arg[-1]))
        elif op is sre_constants.BRANCH:
            height = max(height, *(_star_height(branch) for branch in arg[1]))
    return height


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


_READABLE_FIELDS = field_paths() - {"channel", "lead_source", "requirements", "utm"}


class EventsConfig(_Strict):
    """Webhook event types: which announce a lead (and its kind), which are ignored."""

    paths: list[str] = Field(default_factory=list, description="dotted paths holding the event type")
    handled: dict[str, LeadKind | None] = Field(default_factory=dict)
    ignored: list[str] = Field(default_factory=list)

    @field_validator("paths", "ignored", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)


class ParseConfig(_Strict):
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
            if _nested_repeat(pattern):
                raise ValueError(
                    f"{pattern!r} repeats a repetition (like (a+)+): on a long line of mail it can take "
                    "minutes; write it with one repetition, e.g. (a+) or (?:ab)+"
                )
        return value

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ChannelConfig(_Strict):
    lead_source: int
    agent_id: int | None = None
    adapter: str | None = Field(default=None, description="registered adapter name, or 'configurable'")
    parse: ParseConfig | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    label: str | None = Field(default=None, description="prefix of the opportunity Name tag")
    webhook: WebhookConfig | None = None
    protection_days: int | None = Field(default=None, ge=0)

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


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class OAuth2Config(_Strict):
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

    @field_validator("token_url")
    @classmethod
    def _https(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme == "https" or (url.scheme == "http" and _loopback(url.hostname)):
            return value
        raise ValueError(f"{value!r} must be an https:// URL (http:// only on a loopback host)")

    @model_validator(mode="after")
    def _grant_needs(self) -> OAuth2Config:
        if self.grant == "refresh_token" and not (
            self.refresh_token or self.refresh_token_env or self.refresh_token_file
        ):
            raise ValueError(
                "grant refresh_token needs refresh_token, refresh_token_env or refresh_token_file"
            )
        if self.grant == "client_credentials" and not (
            self.client_secret or self.client_secret_env or self.client_secret_file
        ):
            raise ValueError(
                "grant client_credentials needs client_secret, client_secret_env or client_secret_file"
            )
        return self

    def resolved_client_secret(self, where: str) -> SecretStr | None:
        return _secret(
            self.client_secret, self.client_secret_env, self.client_secret_file, f"{where}.client_secret"
        )

    def resolved_refresh_token(self, where: str) -> SecretStr | None:
        return _secret(
            self.refresh_token, self.refresh_token_env, self.refresh_token_file, f"{where}.refresh_token"
        )


class InboxConfig(_Strict):
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
        return _secret(self.password, self.password_env, self.password_file, f"{where}.password")


class Defaults(_Strict):
    location: str | None = None
    protection_days: int = Field(default=90, ge=0)
    follow_up_hours: int = Field(default=24, ge=0)
    term_months: int = Field(default=12, gt=0)
    rejection_window_hours: int = Field(default=48, ge=0)
    reuse_open_opportunities: bool = Field(
        default=True,
        description="note a new enquiry on an open opportunity staff already made for the customer",
    )


class Routing(_Strict):
    accounts: dict[str, AccountConfig] = Field(default_factory=dict)
    locations: dict[str, LocationConfig] = Field(default_factory=dict)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    inboxes: dict[str, InboxConfig] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)

    @model_validator(mode="after")
    def _references(self) -> Routing:
        problems: list[str] = []
        for name, loc in self.locations.items():
            if loc.account not in self.accounts:
                problems.append(f"locations.{name}.account: no account named {loc.account!r}")
            for channel in (*loc.listings, *loc.agent_ids):
                if channel not in self.channels:
                    problems.append(f"locations.{name}: names channel {channel!r}, which is not configured")
        if self.defaults.location and self.defaults.location not in self.locations:
            problems.append(f"defaults.location: no location named {self.defaults.location!r}")
        claimed: dict[tuple[str, str], str] = {}
        for name, loc in self.locations.items():
            for channel, ids in loc.listings.items():
                for listing in ids:
                    other = claimed.setdefault((channel, listing), name)
                    if other != name:
                        problems.append(
                            f"locations.{name}.listings.{channel}: listing {listing!r} is also claimed "
                            f"by location {other!r}"
                        )
        for name, inbox in self.inboxes.items():
            if inbox.channel and inbox.channel not in self.channels:
                problems.append(f"inboxes.{name}.channel: no channel named {inbox.channel!r}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # ---- lookups -------------------------------------------------------------

    def location_for(self, channel: str, listing_id: str | None) -> str | None:
        """The location claiming this listing, else ``defaults.location``."""
        if listing_id is not None:
            for name, loc in self.locations.items():
                if str(listing_id) in loc.listings.get(channel, ()):
                    return name
        return self.defaults.location

    def claimed_location(self, channel: str, listing_id: str | None) -> str | None:
        """The location that explicitly claims this listing (no default)."""
        if listing_id is None:
            return None
        for name, loc in self.locations.items():
            if str(listing_id) in loc.listings.get(channel, ()):
                return name
        return None

    def agent_id(self, channel: str, location: str) -> int | None:
        loc = self.locations[location]
        return loc.agent_ids.get(channel, self.channels[channel].agent_id)

    def protection_days(self, channel: str, account: str | None) -> int:
        """The broker protection window: the channel's, else the account's, else the default."""
        for days in (
            self.channels[channel].protection_days if channel in self.channels else None,
            self.accounts[account].protection_days if account in self.accounts else None,
        ):
            if days is not None:
                return days
        return self.defaults.protection_days


def _format(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        message = str(e["msg"]).removeprefix("Value error, ")
        for line in message.splitlines():
            problems.append(f"{where}: {line}" if where and not line.startswith(where) else line)
    return problems


def parse_routing(data: Any, source: str) -> Routing:
    if not isinstance(data, dict):
        raise RoutingError(source, ["the file must be a YAML mapping with accounts, locations, channels"])
    try:
        return Routing.model_validate(data)
    except ValidationError as err:
        raise RoutingError(source, _format(err)) from None


def load_routing(path: Path | None) -> Routing:
    """Read and validate the routing file, or the embedded default when ``path`` is None."""
    if path is None:
        text = resources.files("leadrelay").joinpath(EMBEDDED_ROUTING).read_text("utf-8")
        source = f"embedded {EMBEDDED_ROUTING}"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as err:
            raise RoutingError(str(path), [f"cannot read the routing file: {err.strerror}"]) from None
        source = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RoutingError(source, [f"not valid YAML: {err}"]) from None
    return parse_routing(data, source)


@dataclass(frozen=True)
class SecretCheck:
    where: str
    problem: str


def check_secrets(routing: Routing, *, parts: Iterable[str] = ("webhooks", "accounts")) -> list[SecretCheck]:
    """Resolve every secret the given parts need; report the ones missing."""
    problems: list[SecretCheck] = []
    wanted = set(parts)
    if "webhooks" in wanted:
        for name, channel in routing.channels.items():
            if channel.webhook is None:
                continue
            try:
                channel.webhook.keys(f"channels.{name}.webhook")
            except RoutingError as err:
                problems.extend(SecretCheck(p.split(":")[0], p) for p in err.problems)
    if "accounts" in wanted:
        for name, account in routing.accounts.items():
            try:
                account.resolved_password(f"accounts.{name}", None)
                account.resolved_username(f"accounts.{name}", None)
            except RoutingError as err:
                problems.extend(SecretCheck(p.split(":")[0], p) for p in err.problems)
    return problems
