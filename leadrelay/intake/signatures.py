"""Webhook signature verification: Standard Webhooks, a plain HMAC header, or a bearer token.

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


def _fresh_timestamp(header: str, text: str, tolerance_seconds: int, now: float | None) -> int:
    """The Unix seconds in ``text``, refused unless within ``tolerance_seconds`` of now."""
    digits = text.strip()  # ASCII digits only: no sign, no spaces inside, no "1e9", no "²"
    if len(text) > 20 or not (digits.isascii() and digits.isdigit()):
        raise SignatureError(f"{header} is not an integer (Unix seconds)")
    timestamp = int(digits)  # str.strip() and int() disagree on what is whitespace (e.g. "\x1f")
    current = time.time() if now is None else now
    try:
        skew = abs(current - timestamp)
    except OverflowError:  # too far from now for a float to say how far
        skew = math.inf
    if skew > tolerance_seconds:
        raise SignatureError(f"{header} is outside the allowed window (replayed or clock skew)")
    return timestamp


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
    timestamp = _fresh_timestamp("webhook-timestamp", timestamp_text, tolerance_seconds, now)

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


def sign_hmac(secret: bytes | str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Signature`` value for a body (``sha256=<hex>``), over ``"{timestamp}.{body}"`` if given."""
    key = secret if isinstance(secret, bytes) else secret.encode()
    signed = body if timestamp is None else f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(key, signed, hashlib.sha256).hexdigest()


def verify_hmac(
    headers: Mapping[str, str],
    body: bytes,
    keys: Sequence[bytes],
    *,
    signature_header: str = "x-signature",
    id_header: str | None = None,
    timestamp_header: str | None = None,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> Verified:
    """Check a ``sha256=<hex>`` HMAC of the body; the delivery id is optional.

    With ``timestamp_header`` the HMAC is of ``"{timestamp}.{body}"`` and the timestamp
    must be fresh: a captured request cannot be replayed once the window has passed.
    """
    value = headers.get(signature_header.lower())
    if not value:
        raise SignatureError(f"missing {signature_header} header")
    timestamp: int | None = None
    signed = body
    if timestamp_header:
        text = headers.get(timestamp_header.lower())
        if not text:
            raise SignatureError(f"missing {timestamp_header} header")
        timestamp = _fresh_timestamp(timestamp_header, text, tolerance_seconds, now)
        signed = f"{timestamp}.".encode() + body
    algorithm, _, digest = value.strip().partition("=")
    if algorithm.lower() != "sha256" or not digest:
        raise SignatureError(f"{signature_header} must look like sha256=<hex>")
    try:
        offered = bytes.fromhex(digest)
    except ValueError:
        raise SignatureError(f"{signature_header} is not hexadecimal") from None
    for key in keys:
        if hmac.compare_digest(hmac.new(key, signed, hashlib.sha256).digest(), offered):
            return Verified(delivery_id=_delivery_id(headers, id_header), timestamp=timestamp)
    raise SignatureError("no signature matches")


def _delivery_id(headers: Mapping[str, str], id_header: str | None) -> str | None:
    delivery_id = headers.get(id_header.lower()) if id_header else None
    if delivery_id is not None and len(delivery_id) > MAX_ID_LENGTH:
        raise SignatureError(f"{id_header} is too long")
    return delivery_id or None


def verify_token(
    headers: Mapping[str, str],
    path_token: str | None,
    tokens: Sequence[bytes],
    *,
    location: str = "header",
    id_header: str | None = None,
) -> Verified:
    """Check a bearer token (``Authorization: Bearer <token>``) or the URL's token segment.

    Compared as SHA-256 digests with :func:`hmac.compare_digest`: constant time, and
    equal lengths whatever was offered. The token never appears in an error.
    """
    if location == "path":
        if path_token is None:
            raise SignatureError("this channel takes its token in the URL: POST /webhooks/<channel>/<token>")
        offered = path_token
    else:
        if path_token is not None:
            raise SignatureError(
                "this channel takes its token in the Authorization header (Bearer), not in the URL"
            )
        scheme, _, offered = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not offered.strip():
            raise SignatureError("missing Authorization: Bearer <token> header")
        offered = offered.strip()
    digest = hashlib.sha256(offered.encode("utf-8", "replace")).digest()
    matched = False
    for token in tokens:  # every token is compared: the time does not say which one matched
        matched |= hmac.compare_digest(digest, hashlib.sha256(token).digest())
    if not matched:
        raise SignatureError("the token does not match")
    return Verified(delivery_id=_delivery_id(headers, id_header), timestamp=None)
