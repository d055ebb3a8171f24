"""docs/runbook.md, docs/operations.md and the other pages name only what exists.

Every alert and every dead-letter reason has its section; every `leadrelay …`
command and option, every metric and every environment variable they cite is one
the code has — so the page an on-call engineer follows cannot drift from the code.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest
import typer

from leadrelay.cli import app, channels, commands, dlq, inbox, introductions, leads, privacy, setup  # noqa: F401
from leadrelay.db import utcnow
from leadrelay.models import DeadReason
from leadrelay.notify import Notice
from leadrelay.settings import SECRET_FILES, Settings
from leadrelay.worker.alerts import AUTH, BACKLOG, DEAD_LETTERS, INBOX, SCHEDULER
from tests.conftest import REPO

RUNBOOK = (REPO / "docs" / "runbook.md").read_text()
OPERATIONS = (REPO / "docs" / "operations.md").read_text()
PAGES = {"runbook": RUNBOOK, "operations": OPERATIONS}
# every page an operator reads: what they cite must exist too (not every one cites metrics)
ALL_PAGES = {
    "README": (REPO / "README.md").read_text(),
    **{f"docs/{page.name}": page.read_text() for page in sorted((REPO / "docs").glob("*.md"))},
}
METRIC_SOURCES = ("leadrelay/metrics.py", "leadrelay/ledger_metrics.py")
# prometheus_client's own, and the test knobs (tests/operations/test_fuzz.py, tests/stateful/)
OTHER_ENV = {"PROMETHEUS_MULTIPROC_DIR", "LEADRELAY_FUZZ_EXAMPLES", "LEADRELAY_MODEL_EXPLORE"}


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6} (.+)$", markdown, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-") for heading in headings}


def test_every_alert_links_to_a_section_of_the_runbook() -> None:
    for key in (DEAD_LETTERS, BACKLOG, SCHEDULER, f"{AUTH}:main", f"{INBOX}:leads"):
        link = Notice(key, "firing", "", utcnow()).payload()["runbook"]
        page, anchor = link.split("#")
        assert page == "docs/runbook.md"
        assert anchor in anchors(RUNBOOK), f"{key}: no section #{anchor}"


def test_every_dead_letter_reason_has_a_section() -> None:
    assert {reason.value for reason in DeadReason} <= anchors(RUNBOOK)


def test_the_pages_link_only_to_sections_that_exist() -> None:
    for name, text in PAGES.items():
        for anchor in re.findall(r"\]\((?:(?:docs/)?runbook\.md)?#([\w-]+)\)", text):
            if name == "runbook" or f"runbook.md#{anchor}" in text:
                assert anchor in anchors(RUNBOOK), f"{name}: #{anchor}"
    assert "(runbook.md)" in OPERATIONS


@cache
def cli_commands() -> dict[str, Any]:
    """Every command by its words, e.g. ``dlq replay`` (Typer's click objects)."""
    found: dict[str, Any] = {}
    for name, command in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
        found[name] = command
        for sub, inner in getattr(command, "commands", {}).items():
            found[f"{name} {sub}"] = inner
    return found


def options_of(command: Any) -> set[str]:
    return {flag for param in command.params for flag in (*param.opts, *param.secondary_opts)}


@pytest.mark.parametrize("page", ALL_PAGES)
def test_every_command_and_option_cited_exists(page: str) -> None:
    spans = re.findall(r"`(leadrelay [^`]+)`", ALL_PAGES[page].replace("\n", " "))
    for span in spans:
        words = [word.strip("[]") for word in span.split()[1:]]
        if words[0].startswith("--"):  # the command's own options: `leadrelay --version`
            assert set(words) <= options_of(typer.main.get_command(app)), f"{page}: `{span}`"
            continue
        name = " ".join(words[:2]) if " ".join(words[:2]) in cli_commands() else words[0]
        assert name in cli_commands(), f"{page}: `{span}` is no command"
        cited = {word.split("=")[0] for word in words if word.startswith("--")}
        assert cited <= options_of(cli_commands()[name]), f"{page}: `{span}`"


@cache
def metric_names() -> set[str]:
    source = "".join((REPO / path).read_text() for path in METRIC_SOURCES)
    return set(re.findall(r'"(leadrelay_[a-z_]+)"', source))


@pytest.mark.parametrize("page", PAGES)
def test_every_metric_cited_exists(page: str) -> None:
    cited = set(re.findall(r"\bleadrelay_[a-z_]+", PAGES[page]))
    assert cited, "the page cites no metric"
    for name in cited:
        assert re.sub(r"_(count|sum|bucket)$", "", name) in metric_names(), f"{page}: {name}"


@cache
def environment_names() -> set[str]:
    names = {f"LEADRELAY_{field.upper()}" for field in Settings.model_fields}
    names |= {env for _, env in SECRET_FILES.values()}
    for info in Settings.model_fields.values():
        names |= set(getattr(info.validation_alias, "choices", ()))
    for command in cli_commands().values():
        names |= {p.envvar for p in command.params if isinstance(p.envvar, str)}
    return names | OTHER_ENV


@pytest.mark.parametrize("page", ALL_PAGES)
def test_every_environment_variable_cited_exists(page: str) -> None:
    cited = set(re.findall(r"\b(?:LEADRELAY|NEXUDUS|PROMETHEUS)_[A-Z_]+\b", ALL_PAGES[page]))
    if page in PAGES:
        assert cited, "the page cites no setting"
    assert cited <= environment_names(), f"{page}: {sorted(cited - environment_names())}"
