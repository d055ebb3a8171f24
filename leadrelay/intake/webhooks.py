"""The webhook door: which channels accept webhooks, and how each proves the sender."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from leadrelay.intake.signatures import SignatureError, Verified, verify_hmac, verify_standard, verify_token
from leadrelay.routing import Routing, WebhookConfig


@dataclass(frozen=True, slots=True)
class Door:
    channel: str
    config: WebhookConfig
    keys: tuple[bytes, ...]

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        tolerance_seconds: int,
        path_token: str | None = None,
    ) -> Verified:
        if self.config.scheme == "token":
            return verify_token(
                headers, path_token, self.keys, location=self.config.token_in, id_header=self.config.id_header
            )
        if path_token is not None:
            raise SignatureError(
                "this channel signs its webhooks: POST /webhooks/<channel>, no token in the URL"
            )
        if self.config.scheme == "hmac-sha256":
            return verify_hmac(
                headers,
                body,
                self.keys,
                signature_header=self.config.signature_header,
                id_header=self.config.id_header,
                timestamp_header=self.config.timestamp_header,
                tolerance_seconds=tolerance_seconds,
            )
        return verify_standard(headers, body, self.keys, tolerance_seconds=tolerance_seconds)

    def intake_key(self, verified: Verified, body: bytes) -> str:
        """What makes a re-sent delivery recognisable: its id, else its exact bytes.

        Token and body-only HMAC deliveries without an ``id_header`` are keyed by the body's
        hash: the same body sent again is a duplicate, whoever sent it and when.
        """
        if verified.delivery_id:
            return f"webhook:{self.channel}:{verified.delivery_id}"
        return f"webhook:{self.channel}:sha256:{hashlib.sha256(body).hexdigest()}"


def open_doors(routing: Routing) -> dict[str, Door]:
    """One door per channel with a webhook section; secrets are resolved now (fail fast)."""
    doors = {}
    for name, channel in routing.channels.items():
        if channel.webhook is None:
            continue
        keys = tuple(channel.webhook.keys(f"channels.{name}.webhook"))
        doors[name] = Door(channel=name, config=channel.webhook, keys=keys)
    return doors
