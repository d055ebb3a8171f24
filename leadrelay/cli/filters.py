"""The search filters `leadrelay leads list` and `leadrelay dlq list` share (leadrelay.ledger.search)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from leadrelay.cli.app import fail
from leadrelay.durations import parse_since
from leadrelay.ledger.search import MAX_PAGE, MAX_TEXT, Criteria
from leadrelay.models import LeadState

Email = Annotated[str | None, typer.Option(help="a whole e-mail address, or the start of one")]
Phone = Annotated[str | None, typer.Option(help="a phone number (+44…, or national in the channel's region)")]
Name = Annotated[str | None, typer.Option(help="words that start words of the contact's name")]
Reference = Annotated[str | None, typer.Option(help="the portal's reference (external_id)")]
Opportunity = Annotated[int | None, typer.Option("--opportunity", min=1, help="the Nexudus opportunity id")]
Coworker = Annotated[int | None, typer.Option("--coworker", min=1, help="the Nexudus coworker id")]
Channel = Annotated[str | None, typer.Option(help="only this channel")]
State = Annotated[LeadState | None, typer.Option(help="only leads in this state")]
Since = Annotated[str | None, typer.Option(help="only since: 2d, 12h, 30m or a date")]
Until = Annotated[str | None, typer.Option(help="only before: 2d, 12h, 30m or a date")]
After = Annotated[
    int | None, typer.Option(min=1, help="the page after this id (the cursor the page before printed)")
]
Limit = Annotated[int, typer.Option(min=1, max=MAX_PAGE, help=f"rows per page (at most {MAX_PAGE})")]


def when(option: str, text: str | None) -> datetime | None:
    try:
        return parse_since(text)
    except ValueError as err:
        fail(f"{option} {err}")


def criteria(
    *,
    email: str | None,
    phone: str | None,
    name: str | None,
    reference: str | None,
    opportunity: int | None,
    coworker: int | None,
    channel: str | None,
    state: LeadState | None,
    since: str | None,
    until: str | None,
) -> Criteria:
    for option, value in (
        ("--email", email),
        ("--phone", phone),
        ("--name", name),
        ("--reference", reference),
    ):
        if value is not None and (len(value) > MAX_TEXT or "\x00" in value):
            fail(f"{option}: at most {MAX_TEXT} characters, no NUL")
    return Criteria(
        email=email,
        phone=phone,
        name=name,
        reference=reference,
        opportunity_id=opportunity,
        coworker_id=coworker,
        channel=channel,
        state=state.value if state else None,
        since=when("--since", since),
        until=when("--until", until),
    )


def next_page_hint(command: str, cursor: int | None, shown: int, total: int) -> str:
    more = f" Next page: [bold]{command} --after {cursor}[/] (same filters)." if cursor else ""
    return f"{shown} shown of {total} matching.{more}"
