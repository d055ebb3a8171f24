"""`--version`, and `--json` on every list command: the same rows, machine-readable, via the real CLI."""

from __future__ import annotations

import json
import os
from importlib.metadata import version

from leadrelay.runtime import Runtime
from tests.attribution.test_attribution import hubble, workthere
from tests.dead_letters.test_replay import settle
from tests.helpers import canonical, dead_letters, ingest
from tests.operations.support import PERSON
from tests.operations.test_retention import old_delivered_lead
from tests.test_cli import cli

ENV = {**os.environ, "COLUMNS": "80"}  # a narrow terminal: JSON must not wrap or fold


def json_of(*args: str) -> object:
    result = cli(*args, env=ENV)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout  # no colour, no markup
    return json.loads(result.stdout)


def test_version_prints_the_installed_distribution_version() -> None:
    result = cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"leadrelay {version('leadrelay')}"


def test_every_list_command_documents_json_in_its_help() -> None:
    for command in (["dlq", "list"], ["introductions"], ["poll"], ["retention"], ["erase"]):
        result = cli(*command, "--help", env=ENV)
        assert result.returncode == 0, result.stderr
        assert "--json" in result.stdout, command


def test_dlq_list_json_has_the_rows_and_the_open_counts(runtime: Runtime) -> None:
    lead_id = ingest(runtime, canonical(external_id="no-mail-1", contact={"phone": "+44 20 7946 0000"}))
    assert settle(runtime, lead_id) == "dead"
    [letter] = dead_letters(runtime, lead_id)

    listed = json_of("dlq", "list", "--json")

    assert listed["open_by_reason"] == {"validation": 1}
    [row] = listed["dead_letters"]
    assert row["id"] == letter.id
    assert row["lead_id"] == lead_id
    assert (row["channel"], row["reason"], row["status"], row["external_id"]) == (
        "canonical",
        "validation",
        "open",
        "no-mail-1",
    )
    assert "Email" in row["message"]
    assert row["created_at"].startswith(str(letter.created_at.year))
    assert json_of("dlq", "list", "--json", "--reason", "routing")["dead_letters"] == []


def test_introductions_json_has_the_competing_introduction(runtime: Runtime) -> None:
    first = ingest(runtime, hubble(), channel="hubblehq")
    later = ingest(runtime, workthere(), channel="workthere")
    assert [settle(runtime, first), settle(runtime, later)] == ["delivered", "attached"]

    listed = json_of("introductions", "--json")

    assert listed["rejection_window_hours"] == 48
    [row] = listed["competing"]
    assert (row["lead"], row["first_lead"]) == (later, first)
    assert row["later_introduction"] == "Workthere WT-2026-004417"
    assert row["first_introduced_by"] == "HubbleHq enq_8F2KQ7XW"
    assert row["client"] == "Amara Okafor"
    assert 47 * 3600 < row["seconds_left"] <= 48 * 3600
    assert listed["possible_duplicates"] == []


def test_retention_and_erase_dry_runs_as_json(runtime: Runtime) -> None:
    lead_id = old_delivered_lead(runtime)

    due = json_of("retention", "--days", "365", "--dry-run", "--json")
    assert (due["dry_run"], due["leads"], due["by_state"]) == (True, 1, {"delivered": 1})

    email = PERSON["email"]
    found = json_of("erase", "--email", email, "--dry-run", "--json")
    assert found["lead_ids"] == [lead_id]
    assert found["dry_run"] is True
    [record] = found["in_nexudus"]
    assert record["opportunity_id"] is not None

    asked = cli("erase", "--email", email, "--json", env=ENV)
    assert asked.returncode == 1
    assert "--dry-run or --yes" in asked.stderr
