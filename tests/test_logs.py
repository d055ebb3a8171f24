"""Log lines: structlog's written directly, the libraries' through logging; both JSON and redacted."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from leadrelay import logs
from leadrelay.logs import REDACTED, mask_personal
from tests.helpers import logging_restored

R = REDACTED

log = structlog.get_logger("tests.logs")
Lines = Callable[[], list[dict[str, Any]]]


def masked_by_every_mask(text: str) -> str:
    """What mask_personal gave before it looked before each mask: every mask, in turn."""
    text = logs._INPUT_VALUE.sub(f"input_value={REDACTED}", text)
    text = logs._PATH_TOKEN.sub(rf"\g<1>{REDACTED}", text)
    text = logs._EMAIL.sub(REDACTED, text)
    return logs._PHONE.sub(logs._mask_phone, text)


FRAGMENTS = st.sampled_from(
    ["@", "a", "x.y", "+44", " ", "20 7946", "0958", "-", "/", "/webhooks/", "form/", "tok3n", "(0)",
     "input_value=", ", input_type=", "2026-12-02", "12.5", "é", "٣", "\n", "1"]
)  # fmt: skip


@given(st.one_of(st.text(max_size=80), st.lists(FRAGMENTS, max_size=14).map("".join)))
def test_masking_gives_what_every_mask_in_turn_gives(text: str) -> None:
    assert mask_personal(text) == masked_by_every_mask(text)


def test_the_masks_still_mask() -> None:
    line = "call +44 20 7946 0958 or jo@example.com; POST /webhooks/form/s3cret HTTP/1.1; input_value='Jo', x"
    masked = f"call {R} or {R}; POST /webhooks/form/{R} HTTP/1.1; input_value={R} x"
    assert mask_personal(line) == masked
    kept = "took 12.5 s, lead 12345678, at 2026-12-02"  # eight digits at most in a row: not a phone
    assert mask_personal(kept) == kept


@pytest.fixture
def logged(capsys: pytest.CaptureFixture[str]) -> Iterator[Lines]:
    """Logs configured as a process configures them, onto the test's captured stderr; its lines.

    (Configured in the test itself: pytest sets its own stderr again between a test's phases.)
    """
    with logging_restored():
        yield lambda: [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    structlog.contextvars.clear_contextvars()


def test_an_event_is_one_redacted_json_line_with_its_context(logged: Lines) -> None:
    logs.configure()
    structlog.contextvars.bind_contextvars(lead_id=7, channel="hubblehq")
    log.info("lead_read", email="jo@example.com", note="ring +44 20 7946 0958", runs=2)
    try:
        raise ValueError("from jo@example.com")
    except ValueError:
        log.exception("read_failed")
    (read, failed) = logged()
    assert {k: read[k] for k in ("event", "level", "lead_id", "channel", "runs")} == {
        "event": "lead_read", "level": "info", "lead_id": 7, "channel": "hubblehq", "runs": 2
    }  # fmt: skip
    assert read["email"] == REDACTED and read["note"] == f"ring {REDACTED}"
    assert read["timestamp"].endswith("Z")
    assert failed["level"] == "error" and "ValueError" in failed["exception"]
    assert "jo@example.com" not in json.dumps([read, failed])


def test_a_library_line_goes_through_logging_alike(logged: Lines) -> None:
    logs.configure()
    structlog.contextvars.bind_contextvars(lead_id=8)
    # a library's logger that propagates to the root (the tests' in-thread uvicorn servers give
    # uvicorn's loggers handlers of their own; `leadrelay serve` runs uvicorn with log_config=None)
    logging.getLogger("a.library").warning("could not reach %s", "jo@example.com")
    logging.getLogger("httpx").info("below its level")  # the noisy libraries log warnings only
    (line,) = logged()
    assert (line["event"], line["level"], line["lead_id"]) == (f"could not reach {REDACTED}", "warning", 8)


def test_a_logger_used_before_a_new_level_follows_it(logged: Lines) -> None:
    logs.configure()
    log.info("before")  # cached on first use
    logs.configure("ERROR")
    log.info("dropped")
    log.warning("dropped too")
    log.error("kept")
    logs.configure("INFO")
    log.info("again")
    assert [line["event"] for line in logged()] == ["before", "kept", "again"]


def test_a_line_that_cannot_be_written_is_dropped_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = io.StringIO()
    closed.close()
    with logging_restored():
        for stream in (closed, None):  # closed, or none at all (a process started without one)
            monkeypatch.setattr(sys, "stderr", stream)
            logs.configure()
            log.error("nowhere to go")  # raises nothing: the request or task that logged it carries on
            logging.getLogger("a.library").error("nor this")
        monkeypatch.undo()


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no")


def test_a_value_that_cannot_be_rendered_loses_its_line_not_the_caller(logged: Lines) -> None:
    logs.configure()
    log.info("tuple_keys", counts={(1, 2): 3})
    log.info("bad_repr", value=Unprintable(), email="jo@example.com")
    log.info("after")
    assert logged() == [
        {"event": "log_line_lost", "level": "error", "method": "info", "error": "TypeError"},
        {"event": "log_line_lost", "level": "error", "method": "info", "error": "RuntimeError"},
        {"event": "after", "level": "info", "timestamp": ANY},
    ]


def test_a_child_forked_while_a_thread_was_writing_can_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = (tmp_path / "stderr").open("w")
    monkeypatch.setattr(sys, "stderr", out)
    with logging_restored():
        logs.configure()
        with logs._output.lock:  # as if another thread were writing a line at the fork
            pid = os.fork()
            if pid == 0:  # the child: its copy of the lock is held by no thread of its own
                log.info("from_the_child")
                os._exit(0)
        deadline = time.monotonic() + 20
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if done[0] == 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    monkeypatch.undo()
    out.close()
    assert done == (pid, 0), "the child hung on the lock it was forked with"
    logged = [json.loads(line)["event"] for line in (tmp_path / "stderr").read_text().splitlines()]
    assert logged == ["from_the_child"]
