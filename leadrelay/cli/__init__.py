"""The ``leadrelay`` command: one Typer app, commands registered by topic module."""

from __future__ import annotations

import sys

from leadrelay import metrics_dir
from leadrelay.cli.app import app


def main() -> None:
    metrics_dir.prepare(sys.argv)  # before any import that loads prometheus_client
    from leadrelay.cli import commands, dlq, inbox, introductions, privacy  # noqa: F401  (register the commands)

    app()


__all__ = ["app", "main"]
