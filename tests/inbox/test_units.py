"""The pure parts: intake keys, IMAP encodings, FETCH parsing, settings, beat entries."""

from __future__ import annotations

import hashlib
from pathlib import Path
from unittest.mock import patch

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from leadrelay.routing import RoutingError
from leadrelay.settings import Settings
from leadrelay.testing import partners
from leadrelay.worker.imap import keys
from leadrelay.worker.imap.keys import MailKeys, mail_keys, message_id_key, normalised_message_id
from leadrelay.worker.imap.schedule import POLL_TASK, beat_entries, inbox_schedule
from leadrelay.worker.imap.wire import folder_name, parse_fetch, uid_set
from tests.inbox.conftest import inbox_routing

MAIL = b"From: a@b.example\r\nSubject: hi\r\nMessage-ID: <Abc.123@Mail.Example.COM>\r\n\r\nbody\r\n"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("<Abc.123@Mail.Example.COM>", "Abc.123@mail.example.com"),
        ("  <x@y>  (a comment)", "x@y"),
        ("no-brackets@host.example", "no-brackets@host.example"),
        ("", None),
        ("two words", None),
    ],
)
def test_message_ids_are_normalised(header: str, expected: str | None) -> None:
    assert normalised_message_id(header) == expected


def test_the_key_is_the_message_id_whatever_the_mailbox_adds() -> None:
    delivered = b"Delivered-To: leads@x.example\r\nReceived: from mx by imap\r\n" + MAIL
    expected = "mail-id:" + hashlib.sha256(b"Abc.123@mail.example.com").hexdigest()
    assert mail_keys(MAIL).primary == mail_keys(delivered).primary == expected
    assert message_id_key("<Abc.123@MAIL.example.com>") == expected
    assert mail_keys(MAIL).body_sha256 == mail_keys(delivered.replace(b"\r\n", b"\n")).body_sha256


def test_without_a_message_id_the_key_is_the_content() -> None:
    plain = MAIL.replace(b"Message-ID: <Abc.123@Mail.Example.COM>\r\n", b"")
    traced = b"Return-Path: <x@y.example>\r\n" + plain
    assert mail_keys(plain).primary.startswith("mail-sha256:")
    assert mail_keys(plain).primary == mail_keys(traced).primary
    assert mail_keys(plain).primary != mail_keys(plain.replace(b"body", b"other body")).primary
    assert mail_keys(plain).reused_id is None


def _keys_by_the_whole_parser(raw: bytes) -> MailKeys:
    """mail_keys as it read every header of the whole message before (the keys in ledgers today)."""
    with patch.object(keys, "_key_fields", lambda block: keys._parsed_fields(keys._headers(raw))):
        return mail_keys(raw)


# values: ASCII (read directly, \x0b-\x1f included: str.split() takes some as spaces)
# or latin-1 (bytes over 0x7f: the parser's unknown-8bit Header, read by the parser)
VALUE = st.one_of(
    st.text(st.characters(codec="ascii", exclude_characters="\r\n"), max_size=30),
    st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=30),
)
HEADER_LINE = st.one_of(
    st.sampled_from(
        ["Message-ID", "message-id", "MESSAGE-ID", "From", "To", "Cc", "Date", "Subject", "Received", "X-Y"]
    ).flatmap(lambda name: VALUE.map(lambda value: f"{name}:{value}")),
    st.tuples(st.sampled_from([" ", "\t"]), VALUE).map("".join),  # a continuation line
    st.sampled_from(["From sender@example.com Mon Jan  1 00:00:00 2026", ":no name", "From :x"]),
    st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=20),  # no header line
)


@given(lines=st.lists(HEADER_LINE, max_size=12), newline=st.sampled_from(["\r\n", "\n", "\r"]))
@settings(max_examples=400, deadline=None)
def test_reading_only_the_key_fields_gives_the_keys_the_whole_parser_gives(
    lines: list[str], newline: str
) -> None:
    raw = (newline.join(lines) + newline + newline + "body").encode("latin-1")
    assert mail_keys(raw) == _keys_by_the_whole_parser(raw)


@pytest.mark.parametrize(
    "block",
    [
        b"Message-ID: <first@example.com>\r\nMessage-ID: <second@example.com>",  # the first counts
        b"From: a@example.com\r\nSubject: one\r\nsubject: two\r\nFROM: b@example.com",
        b"Subject: folded\r\n\tover\r\n  three\r\n lines\r\nFrom: a@example.com",
        b"Subject: \x1cfile\x1dgroup\x1erecord\x1funit\x0bseparators",  # str.split() takes them as spaces
        b"Subject: caf\xe9\r\nFrom: a@example.com",  # not ASCII: the parser's unknown-8bit Header
        b" continued nothing\r\nFrom: a@example.com\r\nDate: Mon, 1 Jan 2026 00:00:00 +0000",
    ],
)
def test_the_key_fields_read_directly_are_what_the_parser_reads(block: bytes) -> None:
    raw = block + b"\r\n\r\nbody"
    assert keys._key_fields(block) == keys._parsed_fields(keys._headers(raw))
    assert mail_keys(raw) == _keys_by_the_whole_parser(raw)


def test_every_fixture_mail_keeps_its_key() -> None:
    for case in partners.partner_cases():
        if case.kind == "email":
            raw = case.path.read_bytes()
            assert mail_keys(raw) == _keys_by_the_whole_parser(raw), case.key


def test_a_long_message_id_still_fits_the_ledger() -> None:
    key = mail_keys(b"Message-ID: <" + b"x" * 600 + b"@y>\r\n\r\nbody").primary
    assert key.startswith("mail-id:") and len(key) < 400


def test_the_key_does_not_carry_the_message_id_itself() -> None:
    """Some mailers build Message-IDs from a name; the key outlives the retention purge."""
    keys = mail_keys(b"Message-ID: <amara.okafor.1764300000@mail.example>\r\n\r\nbody")
    assert "amara" not in keys.primary and keys.reused_id is not None and "amara" not in keys.reused_id


def test_uid_sets_are_compact() -> None:
    assert uid_set([7, 1, 2, 3, 5, 6, 10]) == "1:3,5:7,10"
    assert uid_set([4]) == "4"


@pytest.mark.parametrize(
    ("name", "wire"),
    [("INBOX", '"INBOX"'), ("Entwürfe", '"Entw&APw-rfe"'), ("R&D", '"R&-D"'), ('a"b', '"a\\"b"')],
)
def test_folder_names_are_quoted_in_modified_utf7(name: str, wire: str) -> None:
    assert folder_name(name) == wire


def test_fetch_answers_are_read_whether_uid_comes_before_or_after_the_body() -> None:
    data = [
        (b"1 (UID 11 BODY[] {3}", b"one"),
        b")",
        (b"2 (BODY[] {3}", b"two"),  # Exchange: UID after the literal
        b" UID 12 FLAGS (\\Seen))",
        b"3 (UID 13 FLAGS (\\Seen))",  # an unsolicited flag update
    ]
    assert parse_fetch(data) == {11: b"one", 12: b"two"}


def test_ports_follow_the_tls_mode() -> None:
    routing = inbox_routing(
        {
            "imaps": {"host": "imap.example.com", "username": "u", "password": "p"},
            "starttls": {
                "host": "imap.example.com",
                "starttls": True,
                "tls": False,
                "username": "u",
                "password": "p",
            },
        }
    )
    imaps, starttls = routing.inboxes["imaps"], routing.inboxes["starttls"]
    assert (imaps.tls, imaps.port, starttls.tls, starttls.port) == (True, 993, False, 143)
    assert routing.inboxes["imaps"].poll_interval_seconds == 60


@pytest.mark.parametrize(
    ("oauth2", "problem"),
    [
        ({"token_url": "http://login.example.com/token"}, "must be an https:// URL"),
        (
            {"client_secret": None},
            "grant client_credentials needs client_secret, client_secret_env or client_secret_file",
        ),
        (
            {"grant": "refresh_token"},
            "grant refresh_token needs refresh_token, refresh_token_env or refresh_token_file",
        ),
    ],
)
def test_oauth2_settings_are_checked(oauth2: dict, problem: str) -> None:
    settings = {
        "token_url": "https://login.example.com/t",
        "client_id": "app",
        "client_secret": "s",
        **oauth2,
    }
    config = {"host": "outlook.office365.com", "username": "leads@x.example", "oauth2": settings}
    with pytest.raises(RoutingError) as err:
        inbox_routing({"leads": config})
    assert any(problem in line for line in err.value.problems), err.value.problems


def test_each_inbox_gets_a_beat_entry_on_the_control_queue(tmp_path: Path) -> None:
    routing = inbox_routing(
        {
            "leads": {"host": "imap.example.com", "username": "u", "password": "p"},
            "sales": {
                "host": "imap.example.com",
                "username": "s",
                "password": "p",
                "poll_interval_seconds": 15,
            },
        }
    )
    entries = beat_entries(routing)
    assert entries["poll-inbox-sales"] == {
        "task": POLL_TASK,
        "schedule": 15,
        "args": ["sales"],
        "options": {"expires": 15},
    }
    assert entries["poll-inbox-leads"]["schedule"] == 60

    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(routing.model_dump(mode="json", exclude_none=True)))
    assert set(inbox_schedule(Settings(config=path))) == {"poll-inbox-leads", "poll-inbox-sales"}
    from leadrelay.worker.celery_app import app

    assert app.conf.task_routes[POLL_TASK] == {"queue": "leadrelay.control"}
