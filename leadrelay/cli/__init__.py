"""The ``leadrelay`` command: one Typer app, commands registered by topic module."""

from __future__ import annotations

from leadrelay.cli.app import app


def main() -> None:
    from leadrelay.cli import commands, dlq, inbox, introductions  # noqa: F401  (register the commands)

    app()


__all__ = ["app", "main"]
