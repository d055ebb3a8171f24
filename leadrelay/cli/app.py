"""The Typer app and what every command shares: consoles and a one-line failure."""

from __future__ import annotations

import getpass
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from leadrelay.errors import ConfigurationError
from leadrelay.routing import Routing, RoutingError
from leadrelay.settings import Settings, get_settings

if TYPE_CHECKING:
    from leadrelay.runtime import Runtime

app = typer.Typer(
    name="leadrelay",
    help="Broker-portal leads (webhooks and inbox e-mails) into Nexudus CRM opportunities, exactly once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

# Every list command takes --json: the same rows, one JSON document on stdout, no markup.
Json = Annotated[
    bool,
    typer.Option("--json", help="print the rows as JSON (one document on stdout, no tables or colour)"),
]


def print_json(data: Any) -> None:
    """Machine-readable output: dates as ISO 8601, anything else unusual as its text."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import PackageNotFoundError, version

        try:
            console.print(f"leadrelay {version('leadrelay')}", highlight=False)
        except PackageNotFoundError:
            fail("leadrelay is not installed as a distribution: pip install -e .")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the installed version and exit."
        ),
    ] = False,
) -> None:
    """Broker-portal leads (webhooks and inbox e-mails) into Nexudus CRM opportunities, exactly once."""


def say_error(message: str) -> None:
    """One ``error:`` line on stderr."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then a non-zero exit: no tracebacks for operators."""
    say_error(message)
    raise typer.Exit(code)


def settings_or_fail() -> Settings:
    try:
        return get_settings()
    except ValidationError as err:
        problems = [
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in err.errors()
        ]
        fail("the environment's settings:\n  " + "\n  ".join(problems))


def routing_or_fail() -> Routing:
    from leadrelay.config_check import configured_routing

    try:
        return configured_routing(settings_or_fail())
    except RoutingError as err:
        fail(f"{err.source}:\n  " + "\n  ".join(err.problems))
    except ConfigurationError as err:
        fail(str(err))


def light_check_or_fail() -> Routing:
    """The routing, parsed and every secret resolvable (no network), else one line per problem."""
    from leadrelay.config_check import DEMO_ROUTING_REFUSED, demo_routing_refused, light_check, remember

    settings = settings_or_fail()
    if demo_routing_refused(settings):
        fail(DEMO_ROUTING_REFUSED)
    routing, report = light_check(settings)
    remember(report)
    if routing is None or report.problems:
        fail(
            "the configuration has problems (`leadrelay check` tells more):\n  "
            + "\n  ".join(report.problems)
        )
    return routing


def cli_runtime() -> Runtime:
    """The ledger and routing, for a command that works on them (the caller closes it)."""
    from leadrelay.runtime import Runtime

    return Runtime.load(settings_or_fail(), routing_or_fail())


def cli_actor() -> str:
    """Who the audit log names for a command: the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"
