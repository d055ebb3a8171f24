"""``leadrelay parse``: payload files read as the worker would, the channel detected or checked.

Each lead goes to stdout as JSON, in the order of the files; which channel was
detected, a channel given that the payload contradicts, and every file that cannot
be read go to stderr, one line each. A file that fails does not stop the others.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape

from leadrelay.adapters import AdapterError, NotALead, RawItem
from leadrelay.adapters.detect import detect
from leadrelay.adapters.from_webhook import json_object
from leadrelay.adapters.mail.classify import not_a_lead
from leadrelay.adapters.mail.forwards import unwrap
from leadrelay.adapters.mail.message import read_mail
from leadrelay.adapters.registry import context_for
from leadrelay.cli.app import errors
from leadrelay.routing import Routing

MAIL_SUFFIXES = (".eml", ".msg", ".txt")
_STYLES = {"error": "bold red", "warning": "bold yellow", "note": "bold"}


def say(level: str, message: str) -> None:
    errors.print(f"[{_STYLES[level]}]{level}:[/] {escape(message)}", highlight=False, soft_wrap=True)


def surely_no_lead(item: RawItem) -> str | None:
    """Why an item no channel claims is no lead (a bounce, an auto-reply, an empty body), or None."""
    if item.kind == "webhook":
        try:
            json_object(item.body)
        except NotALead as err:
            return str(err)
        except AdapterError:
            return None
        return None
    mail = read_mail(item.body)
    reason = not_a_lead(mail, tuple(layer.subject for layer in unwrap(mail)))
    return f"this is {reason}" if reason else None


def _channel(routing: Routing, path: Path, item: RawItem, told: str | None) -> str | None:
    """The channel to read ``item`` as: ``told``, or the detected one; None (said why) when neither."""
    found = detect(item, routing.channels)
    clue = "sender or content" if item.kind == "email" else "shape"
    if told is None:
        if found is None and (reason := surely_no_lead(item)):
            say("error", f"{path.name}: not a lead: {reason}")
        elif found is None:
            known = ", ".join(sorted(routing.channels))
            say(
                "error",
                f"{path}: no channel's {clue} matches this {item.kind}: pass --channel, one of: {known}",
            )
        else:
            say("note", f"{path}: channel {found} (detected by its {clue})")
        return found
    if found is not None and found != told:
        say("warning", f"{path}: its {clue} says channel {found}, not {told}: read as {told}, as told")
    return told


def parse_one(routing: Routing, path: Path, *, channel: str | None, kind: str | None) -> bool:
    """Print one file's lead; False (said why on stderr) when it cannot be read."""
    try:
        body = path.read_bytes()
    except OSError as err:
        say("error", f"cannot read {path}: {err.strerror}")
        return False
    door = kind or ("email" if path.suffix.lower() in MAIL_SUFFIXES else "webhook")
    item = RawItem(kind="email" if door == "email" else "webhook", body=body)
    chosen = _channel(routing, path, item, channel)
    if chosen is None:
        return False
    try:
        ctx, adapter = context_for(routing, chosen)
        lead = adapter.parse(item, ctx)
    except KeyError as err:
        say("error", str(err.args[0]) if err.args else "no adapter for this channel")
        return False
    except AdapterError as err:
        say("error", f"{path.name}: {err}")
        return False
    sys.stdout.write(json.dumps(lead.to_json_dict(), indent=2, ensure_ascii=False) + "\n")
    return True


def parse_files(routing: Routing, files: Sequence[Path], *, channel: str | None, kind: str | None) -> bool:
    """Every file, even after one fails; True when all were read."""
    results = [parse_one(routing, path, channel=channel, kind=kind) for path in files]
    return all(results)
