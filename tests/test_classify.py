"""Every Nexudus answer gets exactly one meaning (leadrelay/nexudus/classify.py)."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import httpx
import pytest

from leadrelay.db import utcnow
from leadrelay.nexudus.classify import Outcome, classify_exception, classify_response, retry_after_seconds

REQUEST = httpx.Request("POST", "https://spaces.nexudus.com/api/crm/crmopportunities")
VALIDATION = {
    "Message": "Status: is a required field",
    "Value": None,
    "Errors": [{"AttemptedValue": None, "Message": "is a required field", "PropertyName": "Status"}],
    "WasSuccessful": False,
}


def answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers, request=REQUEST)
    return httpx.Response(status, json=body, headers=headers, request=REQUEST)


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        (answer(200, {"Status": 200, "Value": {"Id": 1}, "WasSuccessful": True}), Outcome.ok),
        (answer(200, {**VALIDATION, "Status": 200}), Outcome.dead),  # observed: 200 + WasSuccessful false
        (answer(400, VALIDATION), Outcome.dead),
        (answer(404, {"Message": "No such record"}), Outcome.dead),
        (answer(409, headers={"Retry-After": "3"}), Outcome.throttle),
        (answer(429, headers={"Retry-After": "3"}), Outcome.throttle),
        (answer(401, {"Message": "Access Denied"}), Outcome.pause),
        (answer(403), Outcome.pause),
        (answer(500, {"Message": "An error has occurred."}), Outcome.retry),
        (answer(503), Outcome.retry),
    ],
)
def test_each_answer_has_one_meaning(response: httpx.Response, outcome: Outcome) -> None:
    assert classify_response(response, write=True).outcome is outcome


def test_a_validation_failure_keeps_the_errors_array_verbatim() -> None:
    result = classify_response(answer(400, VALIDATION), write=True)
    assert result.errors == VALIDATION["Errors"]
    assert result.message == "Status: is a required field"


def test_a_5xx_on_a_write_may_have_committed_but_not_on_a_read() -> None:
    assert classify_response(answer(500), write=True).maybe_committed
    assert not classify_response(answer(500), write=False).maybe_committed


def test_throttling_carries_retry_after() -> None:
    assert classify_response(answer(409, headers={"Retry-After": "7"}), write=True).retry_after == 7
    assert classify_response(answer(409, headers={"Retry-After": "0.35"}), write=True).retry_after == 0.35


@pytest.mark.parametrize(
    ("exc", "maybe"),
    [
        (httpx.ConnectError("refused", request=REQUEST), False),
        (httpx.ConnectTimeout("slow connect", request=REQUEST), False),
        (httpx.ReadTimeout("no answer", request=REQUEST), True),
        (httpx.RemoteProtocolError("peer closed", request=REQUEST), True),
    ],
)
def test_transport_failures_are_retried_and_say_whether_a_write_may_have_happened(
    exc: httpx.HTTPError, maybe: bool
) -> None:
    result = classify_exception(exc, write=True)
    assert result.outcome is Outcome.retry
    assert result.maybe_committed is maybe
    assert not classify_exception(exc, write=False).maybe_committed


def test_retry_after_reads_seconds_dates_and_nonsense() -> None:
    assert retry_after_seconds("12") == 12
    in_a_minute = format_datetime(utcnow() + timedelta(seconds=60), usegmt=True)
    assert 55 <= retry_after_seconds(in_a_minute) <= 60
    assert retry_after_seconds("-5") == 0
    assert retry_after_seconds(None) == retry_after_seconds("soon") > 0


def test_the_answer_is_kept_as_its_first_500_characters() -> None:
    """What the lead's story shows of an answer: characters, not bytes, and no answer for an empty body."""
    long = httpx.Response(400, content=("é" * 600).encode(), request=REQUEST)
    assert classify_response(long, write=True).excerpt == "é" * 500
    cut = httpx.Response(502, content=b"<html>bad gateway \xff</html>", request=REQUEST)  # not UTF-8
    assert classify_response(cut, write=True).excerpt == "<html>bad gateway \ufffd</html>"
    assert classify_response(answer(403), write=False).excerpt is None
