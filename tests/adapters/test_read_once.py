"""A mail is read once: the inbox's import asks for it three times and gets one reading back."""

from __future__ import annotations

import dataclasses

import pytest

from leadrelay.adapters.base import Limits, configured_limits
from leadrelay.adapters.detect import detect_channel
from leadrelay.adapters.mail import message
from leadrelay.adapters.mail.message import read_mail
from leadrelay.routing import load_routing
from leadrelay.testing.dovecot import received
from leadrelay.testing.mails import enquiries


def test_the_same_bytes_read_twice_are_parsed_once_and_answer_the_same_mail() -> None:
    raw = received(enquiries(1, first=7)[0].raw)
    before = message._read_once.cache_info()
    first = read_mail(raw)
    again = read_mail(bytes(raw))  # equal bytes, another object
    after = message._read_once.cache_info()
    assert again is first
    assert after.misses == before.misses + 1 and after.hits == before.hits + 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.subject = "changed"  # type: ignore[misc]  # a reading handed out twice cannot change


def test_detection_then_reading_parse_the_mail_once() -> None:
    routing = load_routing(None)  # the embedded routing: every portal's channel
    raw = received(enquiries(1, first=3)[0].raw)
    before = message._read_once.cache_info().misses
    channel = detect_channel(raw, routing.channels)
    mail = read_mail(raw)
    assert channel is not None and mail.sender
    assert message._read_once.cache_info().misses == before + 1


def test_other_limits_give_a_reading_of_their_own() -> None:
    raw = received(enquiries(1, first=11)[0].raw)
    limits = configured_limits()
    small = Limits(limits.message_bytes, 64, 64)
    assert read_mail(raw, small) is not read_mail(raw, limits)
    assert len(read_mail(raw, small).plain) <= 64 < len(read_mail(raw, limits).plain)
