"""Webhook signatures: the spec's vector, rotation, replay windows, hostile headers."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st

from leadrelay.intake.signatures import (
    SignatureError,
    decode_secret,
    sign_hmac,
    sign_standard,
    verify_hmac,
    verify_standard,
)

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
KEY = decode_secret(SPEC_SECRET)


def spec_headers(signature: str = SPEC_SIGNATURE, ts: int = SPEC_TS) -> dict[str, str]:
    return {"webhook-id": SPEC_ID, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_signing_reproduces_the_spec_vector() -> None:
    assert sign_standard(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_the_spec_vector_verifies_within_the_window() -> None:
    verified = verify_standard(spec_headers(), SPEC_BODY, [KEY], now=SPEC_TS + 299)
    assert verified.delivery_id == SPEC_ID
    assert verified.timestamp == SPEC_TS


def test_agrees_with_the_reference_package_on_random_messages() -> None:
    reference = standardwebhooks.Webhook(SPEC_SECRET)
    for n in range(20):
        body = f'{{"n": {n}, "text": "caf\\u00e9"}}'
        when = dt.datetime.fromtimestamp(SPEC_TS + n, tz=dt.UTC)
        assert sign_standard(SPEC_SECRET, f"msg_{n}", SPEC_TS + n, body.encode()) == reference.sign(
            f"msg_{n}", when, body
        )


@pytest.mark.parametrize("skew", [301, -301, 10_000])
def test_a_stale_or_future_timestamp_is_refused(skew: int) -> None:
    with pytest.raises(SignatureError, match="window"):
        verify_standard(spec_headers(), SPEC_BODY, [KEY], now=SPEC_TS + skew)


def test_a_changed_body_is_refused() -> None:
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_standard(spec_headers(), b'{"test": 2432232315}', [KEY], now=SPEC_TS)


def test_any_of_several_secrets_may_have_signed_during_rotation() -> None:
    old = decode_secret("whsec_" + base64.b64encode(b"old-key-old-key-old-key!").decode())
    assert verify_standard(spec_headers(), SPEC_BODY, [old, KEY], now=SPEC_TS).delivery_id == SPEC_ID
    with pytest.raises(SignatureError):
        verify_standard(spec_headers(), SPEC_BODY, [old], now=SPEC_TS)


def test_any_of_several_offered_signatures_may_match() -> None:
    header = f"v1,AAAA v2,whatever {SPEC_SIGNATURE}"
    assert verify_standard(spec_headers(header), SPEC_BODY, [KEY], now=SPEC_TS).delivery_id == SPEC_ID


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TS)},
        spec_headers(ts=0) | {"webhook-timestamp": "yesterday"},
        spec_headers("v1"),
        spec_headers("v1,!!!notbase64"),
        spec_headers("garbage"),
        spec_headers() | {"webhook-id": "x" * 300},
    ],
)
def test_malformed_headers_are_refused_cleanly(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        verify_standard(headers, SPEC_BODY, [KEY], now=SPEC_TS)


@given(
    delivery_id=st.text(max_size=40),
    timestamp=st.text(max_size=20),
    signature=st.text(max_size=120),
    body=st.binary(max_size=200),
)
def test_no_header_value_makes_verification_crash(
    delivery_id: str, timestamp: str, signature: str, body: bytes
) -> None:
    headers = {"webhook-id": delivery_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
    with pytest.raises(SignatureError):
        verify_standard(headers, body, [KEY], now=SPEC_TS)


@given(value=st.text(max_size=120), body=st.binary(max_size=200))
def test_no_x_signature_value_makes_verification_crash(value: str, body: bytes) -> None:
    with pytest.raises(SignatureError):
        verify_hmac({"x-signature": value}, body, [b"s3cret"])


@given(body=st.binary(max_size=500), delivery_id=st.from_regex(r"msg_[A-Za-z0-9]{1,40}", fullmatch=True))
def test_whatever_is_signed_verifies_and_no_changed_byte_does(body: bytes, delivery_id: str) -> None:
    headers = {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(SPEC_TS),
        "webhook-signature": sign_standard(SPEC_SECRET, delivery_id, SPEC_TS, body),
    }
    assert verify_standard(headers, body, [KEY], now=SPEC_TS).delivery_id == delivery_id
    assert verify_hmac({"x-signature": sign_hmac(b"s3cret", body)}, body, [b"s3cret"]).timestamp is None
    for changed in (body + b"\x00", bytes([body[0] ^ 1]) + body[1:] if body else b"x"):
        with pytest.raises(SignatureError):
            verify_standard(headers, changed, [KEY], now=SPEC_TS)
        with pytest.raises(SignatureError):
            verify_hmac({"x-signature": sign_hmac(b"s3cret", body)}, changed, [b"s3cret"])


def test_plain_hmac_header_scheme() -> None:
    body = b'{"lead": 1}'
    headers = {"x-signature": sign_hmac(b"s3cret", body), "x-delivery": "d-1"}
    verified = verify_hmac(headers, body, [b"s3cret"], id_header="X-Delivery")
    assert verified.delivery_id == "d-1"
    with pytest.raises(SignatureError):
        verify_hmac(headers, body + b" ", [b"s3cret"])
    with pytest.raises(SignatureError, match="hexadecimal"):
        verify_hmac({"x-signature": "sha256=zz"}, body, [b"s3cret"])
    with pytest.raises(SignatureError, match="missing"):
        verify_hmac({}, body, [b"s3cret"])


def test_a_whsec_secret_that_is_not_base64_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="base64"):
        decode_secret("whsec_not base64!")


@pytest.mark.parametrize("timestamp", ["0\x1f", "\x1c1700000000", "1700000000\x1d\x1e"])
def test_a_timestamp_padded_with_what_only_strip_calls_whitespace_is_refused_cleanly(timestamp: str) -> None:
    """str.strip() removes the ASCII separators \\x1c-\\x1f and int() does not accept them (was a 500)."""
    headers = {"webhook-id": "msg_1", "webhook-timestamp": timestamp, "webhook-signature": "v1,AAAA"}
    with pytest.raises(SignatureError):
        verify_standard(headers, SPEC_BODY, [KEY], now=SPEC_TS)
