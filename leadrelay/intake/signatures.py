"""Webhook signature verification: Standard Webhooks, or a plain HMAC header.

Written here rather than taken from the ``standardwebhooks`` package because the
door needs what that package does not do: several secrets at once (rotation),
raw bytes that are never decoded, and a typed refusal for *every* malformed
header instead of an exception from deep inside ``split`` or ``b64decode``. The
tests check this code against the spec's vector and against that package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from leadrelay.errors import Refused

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format prefix, not a secret)
MAX_ID_LENGTH = 256


class SignatureError(Refused):
    """The request is not proven to come from the partner (answered with 401)."""


@dataclass(frozen=True, slots=True)
class Verified:
    delivery_id: str | None
    timestamp: int | None


def decode_secret(secret: bytes | str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; bytes are taken as the key itself."""
    if isinstance(secret, bytes):
        return secret
    text = secret
    if text.startswith(SECRET_PREFIX):
        body = text[len(SECRET_PREFIX) :]
        try:
            return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a whsec_ secret must be base64 after the prefix") from None
    return text.encode()


def sign_standard(secret: bytes | str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for a delivery (``v1,<base64>``)."""
    mac = hmac.new(decode_secret(secret), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify_standard(
    headers: Mapping[str, str],
    body: bytes,
    keys: Sequence[bytes],
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> Verified:
    """Check Standard Webhooks headers; any of ``keys`` (decoded secrets) may have signed."""
    delivery_id = headers.get("webhook-id")
    timestamp_text = headers.get("webhook-timestamp")
    signature_header = headers.get("webhook-signature")
    if not delivery_id or not timestamp_text or not signature_header:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if len(delivery_id) > MAX_ID_LENGTH:
        raise SignatureError("webhook-id is too long")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    try:
        skew = abs(current - timestamp)
    except OverflowError:  # hundreds of digits: too far from now for a float to say how far
        skew = math.inf
    if skew > tolerance_seconds:
        raise SignatureError("webhook-timestamp is outside the allowed window (replayed or clock skew)")

    offered: list[bytes] = []
    for part in signature_header.split():
        version, _, value = part.partition(",")
        if version != "v1" or not value:
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not offered:
        raise SignatureError("webhook-signature has no v1 signature")

    signed = f"{delivery_id}.{timestamp}.".encode() + body
    for key in keys:
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return Verified(delivery_id=delivery_id, timestamp=timestamp)
    raise SignatureError("no signature matches")


def sign_hmac(secret: bytes | str, body: bytes) -> str:
    """The ``X-Signature`` value for a body (``sha256=<hex>``)."""
    key = secret if isinstance(secret, bytes) else secret.encode()
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_hmac(
    headers: Mapping[str, str],
    body: bytes,
    keys: Sequence[bytes],
    *,
    signature_header: str = "x-signature",
    id_header: str | None = None,
) -> Verified:
    """Check a ``sha256=<hex>`` HMAC of the body; the delivery id is optional."""
    value = headers.get(signature_header.lower())
    if not value:
        raise SignatureError(f"missing {signature_header} header")
    algorithm, _, digest = value.strip().partition("=")
    if algorithm.lower() != "sha256" or not digest:
        raise SignatureError(f"{signature_header} must look like sha256=<hex>")
    try:
        offered = bytes.fromhex(digest)
    except ValueError:
        raise SignatureError(f"{signature_header} is not hexadecimal") from None
    for key in keys:
        if hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), offered):
            delivery_id = headers.get(id_header.lower()) if id_header else None
            if delivery_id is not None and len(delivery_id) > MAX_ID_LENGTH:
                raise SignatureError(f"{id_header} is too long")
            return Verified(delivery_id=delivery_id or None, timestamp=None)
    raise SignatureError("no signature matches")
