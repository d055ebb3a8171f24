"""The Typer app and what every command shares: consoles and a one-line failure."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from leadrelay.routing import Routing, RoutingError, load_routing
from leadrelay.settings import get_settings

app = typer.Typer(
    name="leadrelay",
    help="Broker-portal leads (webhooks and inbox e-mails) into Nexudus CRM opportunities, exactly once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then a non-zero exit: no tracebacks for operators."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(code)


def routing_or_fail() -> Routing:
    try:
        return load_routing(get_settings().config)
    except RoutingError as err:
        fail(f"{err.source}:\n  " + "\n  ".join(err.problems))
