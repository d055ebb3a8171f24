"""The `leadrelay` command as an operator meets it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.partners import Case, partner_cases, sample

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
    assert "✓" in out
