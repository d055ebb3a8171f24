"""``leadrelay channels``: teach the configurable adapter a new portal from sample items."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from leadrelay.cli.app import Json, app, fail
from leadrelay.cli.parsing import MAIL_SUFFIXES, say

channels = typer.Typer(help="Work on the routing file's channels.", no_args_is_help=True)
app.add_typer(channels, name="channels")

_MAX_SAMPLE_BYTES = 10_000_000


@channels.command("suggest")
def suggest_command(
    files: Annotated[
        list[Path],
        typer.Argument(help="two or three sample e-mails (.eml) or webhook bodies (.json)", metavar="FILE"),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="the channel name to show")] = "newportal",
    kind: Annotated[str | None, typer.Option(help="webhook or email (default: from the file)")] = None,
    lead_source: Annotated[
        int | None, typer.Option("--lead-source", help="the Nexudus LeadSource number to write in")
    ] = None,
    as_json: Json = False,
) -> None:
    """Propose a `parse:` block for a portal the adapters do not know, from its sample items.

    Paste the YAML under `channels.<name>:` in the routing file, check the lines
    marked CHECK, then run `leadrelay parse --channel <name>` on the same files.
    """
    from leadrelay.adapters.suggest import Sample, suggest
    from leadrelay.adapters.suggest.render import dumps, to_yaml

    if kind not in (None, "email", "webhook"):
        fail("--kind must be webhook or email", code=2)
    samples: list[Sample] = []
    for path in files:
        try:
            size = path.stat().st_size
            if size > _MAX_SAMPLE_BYTES:
                fail(f"{path} is {size:,} bytes: a sample item is at most {_MAX_SAMPLE_BYTES:,}", code=2)
            body = path.read_bytes()
        except OSError as err:
            fail(f"cannot read {path}: {err.strerror}", code=2)
        door = kind or ("email" if path.suffix.lower() in MAIL_SUFFIXES else "webhook")
        samples.append(Sample(path.name, body, door))
    suggestion = suggest(samples)
    if suggestion.samples == 0:
        fail("no sample could be read: " + "; ".join(suggestion.unread), code=2)
    for unread in suggestion.unread:
        say("warning", f"{unread} (left out)")
    if suggestion.samples < 2:
        say("note", "with one sample, labels and the reference pattern are guesses: give two or three")
    sys.stdout.write(dumps(suggestion) + "\n" if as_json else to_yaml(suggestion, name, lead_source))
