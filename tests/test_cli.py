"""The `leadrelay` command as an operator meets it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from leadrelay.testing.partners import Case, partner_cases, sample

CANONICAL = sample("canonical", "lead.json")


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadrelay.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def dotted(data: dict, path: str) -> object:
    for part in path.split("."):
        data = data[part]  # type: ignore[assignment]
    return data


@pytest.mark.parametrize("case", partner_cases("samples"), ids=lambda c: c.key)
def test_parse_prints_every_sample_as_expected(case: Case) -> None:
    result = cli("parse", "--channel", case.channel, str(case.path))
    assert result.returncode == 0, result.stderr
    lead = json.loads(result.stdout)
    assert {path: dotted(lead, path) for path in case.expected} == case.expected
    assert "warning" not in result.stderr


def documents(text: str) -> list[dict]:
    """The JSON documents ``parse`` printed one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        document, at = decoder.raw_decode(text, at)
        found.append(document)
    return found


def test_parse_without_a_channel_detects_each_files_and_says_which() -> None:
    samples = partner_cases("samples")
    result = cli("parse", *(str(case.path) for case in samples))
    assert result.returncode == 0, result.stderr
    assert [lead["channel"] for lead in documents(result.stdout)] == [case.channel for case in samples]
    notes = result.stderr.splitlines()
    assert len(notes) == len(samples)
    for case, note in zip(samples, notes, strict=True):
        assert note.startswith(f"note: {case.path}: channel {case.channel} (detected by its ")
    assert "sender or content" in result.stderr and "shape" in result.stderr


@pytest.mark.parametrize(
    ("told", "file", "clue"),
    [
        ("kontor", sample("hubblehq", "email-viewing-request.eml"), "sender or content"),
        ("workthere", sample("hubblehq", "webhook-enquiry-minimal.json"), "shape"),
    ],
)
def test_parse_warns_when_the_file_looks_like_another_channel_but_reads_it_as_told(
    told: str, file: Path, clue: str
) -> None:
    result = cli("parse", "--channel", told, str(file))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["channel"] == told
    [warning] = result.stderr.splitlines()
    says = f"its {clue} says channel hubblehq, not {told}"
    assert warning == f"warning: {file}: {says}: read as {told}, as told"


def test_parse_names_the_channels_when_no_channel_fits_and_goes_on_with_the_next_file(
    tmp_path: Path,
) -> None:
    stranger = tmp_path / "stranger.eml"
    stranger.write_bytes(b"From: someone@else.example\r\nSubject: hello\r\n\r\nName: Ann\r\nDesks: 4\r\n")
    shapeless = tmp_path / "shapeless.json"
    shapeless.write_text('{"unrelated": {"shape": 1}}')
    result = cli("parse", str(stranger), str(shapeless), str(CANONICAL))
    assert result.returncode == 2
    assert [lead["channel"] for lead in documents(result.stdout)] == ["canonical"]
    mail, webhook, note = result.stderr.splitlines()
    choices = "pass --channel, one of: canonical, hubblehq, kontor, liquidspace, workthere"
    assert mail == f"error: {stranger}: no channel's sender or content matches this email: {choices}"
    assert webhook == f"error: {shapeless}: no channel's shape matches this webhook: {choices}"
    assert note.startswith(f"note: {CANONICAL}: channel canonical")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b'{"contact": {"full_name": "Nobody"}}', "neither an e-mail address nor a usable phone number"),
        (b'{"contact": {"email": "not-an-address"}}', "contact.email: is not an e-mail address"),
    ],
)
def test_parse_exits_2_with_one_line_when_it_cannot_read(tmp_path: Path, content: bytes, reason: str) -> None:
    payload = tmp_path / "payload.json"
    payload.write_bytes(content)
    result = cli("parse", "--channel", "canonical", str(payload))
    assert result.returncode == 2
    assert result.stdout == ""
    assert reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


JUNK = [case for case in partner_cases("variations") if case.expected.get("_raises") == "NotALead"]


@pytest.mark.parametrize("case", [c for c in JUNK if c.path.suffix == ".eml"], ids=lambda c: c.key)
def test_parse_refuses_bounces_auto_replies_and_newsletters_with_one_line(case: Case) -> None:
    """Detected or not, junk mail exits 2 with one line that says what it is."""
    result = cli("parse", str(case.path))
    assert result.returncode == 2
    assert result.stdout == ""
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in result.stderr
    assert re.search(
        r"automatic reply|delivery status|newsletter|reply in a conversation|update", error[0]
    ), error


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the body is empty"),
        (b"{}", "the body is an empty JSON object"),
        (b"[]", "the body is an empty array, not a JSON object"),
        (b'"hello"', "the body is a string, not a JSON object"),
    ],
)
@pytest.mark.parametrize("told", [None, "hubblehq"])
def test_parse_refuses_empty_and_non_object_bodies_with_one_line(
    tmp_path: Path, content: bytes, reason: str, told: str | None
) -> None:
    payload = tmp_path / "payload.json"
    payload.write_bytes(content)
    result = cli("parse", *(["--channel", told] if told else []), str(payload))
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: payload.json: ") and line.endswith(reason)


def test_parse_names_the_known_channels_when_given_an_unknown_one(tmp_path: Path) -> None:
    result = cli("parse", "--channel", "nosuch", str(CANONICAL))
    assert result.returncode == 2
    assert "no channel named 'nosuch'" in result.stderr
    assert "canonical" in result.stderr


def test_parse_reports_a_missing_file_without_a_traceback(tmp_path: Path) -> None:
    result = cli("parse", "--channel", "canonical", str(tmp_path / "missing.json"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_broken_routing_file_is_reported_by_key(tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text("accounts: {main: {}}\nchannels: {hubblehq: {lead_source: 1700}}\n")
    import os

    result = cli(
        "parse",
        "--channel",
        "hubblehq",
        str(CANONICAL),
        env={**os.environ, "LEADRELAY_CONFIG": str(routing)},
    )
    assert result.returncode == 1
    assert "channels.hubblehq.lead_source: 1700 is not a Nexudus LeadSource" in result.stderr


def test_demo_runs_the_whole_flow_on_the_embedded_default() -> None:
    import os

    result = cli("demo", timeout=240, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "a local sandbox that follows the documented API stands in" in out
    assert "Broker zap-000193" in out
    # the lead and its repeat race through two worker threads: either may be the duplicate
    assert "duplicate of lead 1" in out or "duplicate of lead 2" in out
    assert "[validation] Email: is a required field" in out
    # the portal e-mail went through the inbox poller's intake and the adapters, and was delivered
    # (the worker may create it before or after the webhook's: its opportunity id is either)
    mail_row = r"│ 4 +│ hubblehq email +│ delivered +│ opportunity 50000[12] \(HubbleHq enq_8F2KQ7XW\)"
    assert re.search(mail_row, out), out
    assert "17 (HubbleHq)" in out
    assert "✓" in out
    assert "stays up" not in out


def test_demo_keep_leaves_the_stack_up_with_the_admin_page_until_ctrl_c() -> None:
    import os
    import signal

    import httpx

    env = {**os.environ, "COLUMNS": "200", "BROWSER": "true"}  # a browser that opens nothing
    env.pop("DISPLAY", None)
    demo = subprocess.Popen(
        [sys.executable, "-m", "leadrelay.cli", "demo", "--keep"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    seen: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            seen.append(line)
            if "Log in with the admin token" in line:
                break
        out = "".join(seen)
        admin = re.search(r"Admin page: (http://127\.0\.0\.1:\d+/admin)", out)
        token = re.search(r"admin token (\S+) ", out)
        assert admin and token, out
        with httpx.Client(base_url=admin[1].removesuffix("/admin"), timeout=10) as client:
            assert client.get("/admin/login").status_code == 200
            logged_in = client.post("/admin/login", data={"token": token[1], "name": "test"})
            assert logged_in.status_code in (200, 303), logged_in.text
            page = client.get("/admin/dead-letters", follow_redirects=True)
            assert page.status_code == 200
            assert "Email: is a required field" in page.text  # the demo's dead letter, to explore
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, out + rest
    assert "Stopping the receiver, the worker and the sandbox" in rest
    with pytest.raises(httpx.ConnectError):
        httpx.get(admin[1], timeout=5)


@pytest.mark.parametrize("case", [c for c in partner_cases("variations") if c.several], ids=lambda c: c.key)
def test_parse_prints_the_leads_of_a_digest_or_a_table_as_one_array(case: Case) -> None:
    result = cli("parse", str(case.path))
    failing = [n for n, lead in enumerate(case.leads, start=1) if "_raises" in lead]
    assert result.returncode == (2 if failing else 0), result.stderr
    (leads,) = documents(result.stdout)
    readable = [lead for lead in case.leads if "_raises" not in lead]
    assert [
        {path: dotted(got, path) for path in want} for got, want in zip(leads, readable, strict=True)
    ] == readable
    assert f"{len(case.leads)} leads, read one by one" in result.stderr
    for n in failing:
        assert f"(lead {n} of {len(case.leads)})" in result.stderr
