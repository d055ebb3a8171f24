"""Setting up: ``leadrelay init`` (a starter routing file), ``check`` and ``schema routing``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import SecretStr
from rich.table import Table

from leadrelay.cli.app import Json, app, console, errors, fail, print_json, settings_or_fail
from leadrelay.cli.starter import CHANNEL_CHOICES, new_secret, new_token, plan_locations, render, secret_env

schema_app = typer.Typer(help="Print JSON Schemas (editors autocomplete the routing file with them).")
app.add_typer(schema_app, name="schema")


@schema_app.command("routing")
def schema_routing() -> None:
    """The JSON Schema of the routing file, generated from its models."""
    from leadrelay.routing import routing_json_schema

    print_json(routing_json_schema())


def _records(client: Any, path: str) -> list[dict[str, Any]]:
    from leadrelay.nexudus.lookups import records

    result = records(client, path)
    if not result.ok:
        fail(f"Nexudus answered GET {path} with {result.message or result.outcome.value}")
    return list(result.value or [])


def _ask_channels() -> list[str]:
    console.print("Broker channels: " + ", ".join(CHANNEL_CHOICES))
    answer = typer.prompt("Which (comma-separated)", default="hubblehq,canonical")
    return [part.strip().lower() for part in answer.split(",") if part.strip()]


@app.command()
def init(
    output: Annotated[Path, typer.Option("--output", "-o", help="the routing file to write")] = Path(
        "routing.yaml"
    ),
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", "-c", help=f"a channel to route (repeat): {', '.join(CHANNEL_CHOICES)}"),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Nexudus API base URL (default NEXUDUS_BASE_URL)")
    ] = None,
    username: Annotated[str | None, typer.Option(help="Nexudus login (default NEXUDUS_USERNAME)")] = None,
    password: Annotated[
        str | None, typer.Option(help="Nexudus password (default NEXUDUS_PASSWORD; asked on a terminal)")
    ] = None,
    totp: Annotated[
        str | None, typer.Option(help="the current two-factor code, for accounts that use it")
    ] = None,
    token: Annotated[
        list[str] | None,
        typer.Option(
            "--token",
            help="a channel whose sender cannot sign (Zapier, Make, a form): a bearer token instead (repeat)",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Log in to Nexudus, list its businesses and CRM boards, and write a starter routing file."""
    from leadrelay.nexudus import client as api
    from leadrelay.nexudus.lookups import Paced, records
    from leadrelay.routing import parse_routing

    settings = settings_or_fail()
    interactive = sys.stdin.isatty()
    if output.exists() and not force:
        fail(f"{output} exists: pass --force to overwrite it, or --output another path")
    url = base_url or settings.nexudus_base_url
    user = username or settings.nexudus_username or (typer.prompt("Nexudus login") if interactive else None)
    secret = password or (settings.nexudus_password.get_secret_value() if settings.nexudus_password else None)
    if secret is None and interactive:
        secret = typer.prompt("Nexudus password", hide_input=True)
    if not user or not secret:
        fail("give the Nexudus login: --username and --password (or NEXUDUS_USERNAME, NEXUDUS_PASSWORD)")
    chosen = [c.lower() for c in channel] if channel else (_ask_channels() if interactive else [])
    unknown = [c for c in chosen if c not in CHANNEL_CHOICES]
    if unknown or not chosen:
        fail(
            f"--channel must name one or more of {', '.join(CHANNEL_CHOICES)} "
            f"(got {', '.join(unknown) or 'none'})"
        )
    tokens = frozenset(c.lower() for c in token or [])
    if stray := sorted(tokens - set(chosen)):
        fail(f"--token names a channel that is not chosen with --channel: {', '.join(stray)}")
    client = api.NexudusClient(
        budget=Paced(), account="main", base_url=url, username=user, password=SecretStr(secret), totp=totp
    )
    try:
        auth = client.check_auth()
        if not auth.ok:
            hint = "" if totp else " (an account with two-factor login needs --totp)"
            fail(f"the Nexudus login failed: {auth.message or auth.outcome.value}{hint}")
        businesses = _records(client, api.BUSINESSES)
        boards = _records(client, api.BOARDS)
        columns = _records(client, api.BOARD_COLUMNS)
        countries = records(client, api.COUNTRIES)
        codes = {
            int(c["Id"]): str(c.get("TwoLetterCode") or "").upper()
            for c in (countries.value or [] if countries.ok else [])
        }
    finally:
        client.close()
    planned = plan_locations(businesses, boards, columns, codes)
    names = list(dict.fromkeys(chosen))
    text = render(base_url=url, username=user, locations=planned, channels=names, tokens=tokens)
    parse_routing(yaml.safe_load(text), str(output))  # what is written must load
    _show_locations(planned, boards, columns)
    output.write_text(text, "utf-8")
    secrets_ = {
        secret_env(name, token=name in tokens): new_token() if name in tokens else new_secret()
        for name in names
    }
    console.print(
        f"\nWrote {output}. Webhook secrets and tokens, shown once (give each to its sender):",
        highlight=False,
    )
    sys.stdout.write("\n# .env snippet\n" + "".join(f"{k}={v}\n" for k, v in secrets_.items()))
    sys.stdout.write("NEXUDUS_PASSWORD=...\n")
    sys.stdout.write(f"LEADRELAY_CONFIG={output.resolve()}\n\n")
    console.print(
        "Next: fill in the agent_id TODOs, then `leadrelay check`. For autocompletion in your editor: "
        "`leadrelay schema routing > leadrelay-routing.schema.json` next to the file.",
        highlight=False,
    )


def _show_locations(planned: Any, boards: list[dict[str, Any]], columns: list[dict[str, Any]]) -> None:
    table = Table("location", "business", "boards", "new-lead column")
    for loc in planned:
        own = [b for b in boards if b.get("BusinessId") == loc.business.get("Id")]
        ids = {b["Id"] for b in own}
        count = len([c for c in columns if c.get("CrmBoardId") in ids])
        column = f"{loc.column['Id']} {loc.column.get('Name')}" if loc.column else "none (add a board)"
        stages = ", ".join(
            f"{c['Id']} {c.get('Name')}"
            for c in sorted(columns, key=lambda c: (c.get("CrmBoardId") or 0, c.get("Position") or 0))
            if c.get("CrmBoardId") in ids
        )
        boards_text = ", ".join(f"{b['Id']} {b.get('Name')}" for b in own) + f" ({count} columns: {stages})"
        table.add_row(loc.name, f"{loc.business.get('Id')} {loc.business.get('Name')}", boards_text, column)
    console.print(table)


@app.command()
def check(
    light: Annotated[bool, typer.Option("--light", help="the file and its secrets only: no network")] = False,
    public_url: Annotated[
        str | None, typer.Option(help="the receiver's public base URL (default LEADRELAY_PUBLIC_URL)")
    ] = None,
    as_json: Json = False,
) -> None:
    """Check the routing file: its secrets, every id in Nexudus, every inbox; one line per problem."""
    from leadrelay.config_check import light_check, remember

    settings = settings_or_fail()
    if light:
        report = light_check(settings)[1]
    else:
        from leadrelay.worker.config_check import full_check

        report = full_check(settings, base_url=public_url)
    remember(report)
    if as_json:
        print_json({**report.summary(), **report.details})
    else:
        _print_report(report.details)
        for problem in report.problems:
            errors.print(problem, markup=False, highlight=False, soft_wrap=True)
        if report.ok:
            console.print(f"[green]ok[/]: the {report.form} check found no problem")
    if not report.ok:
        raise typer.Exit(1)


def _print_report(details: dict[str, Any]) -> None:
    if details.get("channels"):
        table = Table("channel", "webhook URL", "signing scheme", "lead source")
        table.columns[1].overflow = "fold"
        for row in details["channels"]:
            table.add_row(row["channel"], row["url"], row["scheme"], str(row["lead_source"]))
        console.print(table)
    for part in ("accounts", "inboxes"):
        if details.get(part):
            console.print(f"{part}: " + json.dumps(details[part]), highlight=False, markup=False)
