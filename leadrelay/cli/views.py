"""What `dlq show` and `leads show` both print: the attempts, the canonical lead, the raw input."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

from leadrelay.cli.app import console
from leadrelay.models import DeliveryAttempt

RAW_PREVIEW = 4000


def print_story(
    attempts: Sequence[DeliveryAttempt],
    canonical_json: str | None,
    raw_text: str,
    content_type: str | None,
    *,
    whole: bool,
) -> None:
    """Every attempt, the canonical lead, and the raw input (its first characters unless ``whole``)."""
    if attempts:
        table = Table(title="Attempts", title_justify="left")
        for column in ("when", "call", "status", "outcome", "error / response"):
            table.add_column(column, overflow="fold")
        for attempt in attempts:
            table.add_row(
                attempt.started_at.isoformat(timespec="seconds"),
                attempt.call,
                str(attempt.status_code or "-"),
                attempt.outcome or "in flight",
                escape((attempt.error or attempt.response or "")[:200]),
            )
        console.print(table)
    if canonical_json:
        console.print(
            Panel(Syntax(canonical_json, "json", word_wrap=True), title="Canonical lead", title_align="left")
        )
    shown = (
        raw_text
        if whole or len(raw_text) <= RAW_PREVIEW
        else raw_text[:RAW_PREVIEW] + f"\n… ({len(raw_text)} characters; --raw)"
    )
    console.print(
        Panel(escape(shown), title=f"Raw input ({content_type or 'unknown type'})", title_align="left")
    )
