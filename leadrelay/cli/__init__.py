"""The ``leadrelay`` command: one Typer app, commands registered by topic module."""

from __future__ import annotations

import sys

from leadrelay import metrics_dir
from leadrelay.cli.app import app, say_error


def main() -> None:
    metrics_dir.prepare(sys.argv)  # before any import that loads prometheus_client
    from leadrelay.cli import channels, commands, dlq, inbox, introductions, leads, privacy, setup  # noqa: F401
    from leadrelay.errors import LeadRelayError

    try:
        app()
    except LeadRelayError as err:  # not found, refused, a setting to fix (leadrelay.errors): one line
        say_error(str(err))
        sys.exit(1)


__all__ = ["app", "main"]
