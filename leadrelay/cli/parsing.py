"""``leadrelay parse``: payload files read as the worker would, the channel detected or checked.

Each lead goes to stdout as JSON, in the order of the files; a mail that holds
several leads (a digest, a CSV or XLSX of leads attached) as a JSON array of them,
split as the inbox poller splits it. Which channel was detected, a channel given
that the payload contradicts, and every file (or lead of a file) that cannot be
read go to stderr, one line each. A file that fails does not stop the others.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape

from leadrelay.adapters import AdapterError, NotALead, RawItem
from leadrelay.adapters.base import Adapter, ParseContext
from leadrelay.adapters.detect import detect
from leadrelay.adapters.from_webhook import json_object
from leadrelay.adapters.mail.classify import not_a_lead
from leadrelay.adapters.mail.forwards import unwrap
from leadrelay.adapters.mail.message import read_mail
from leadrelay.adapters.pieces import split_item
from leadrelay.adapters.portal import PortalAdapter
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
        if item.kind == "email":
            several = _several(path, adapter, ctx, body)
            if several is not None:
                return several
        if isinstance(adapter, PortalAdapter):
            parsed = adapter.parse_noting(item, ctx)
            lead, unread = parsed.lead, parsed.unread
        else:
            lead, unread = adapter.parse(item, ctx), ()
    except KeyError as err:
        say("error", str(err.args[0]) if err.args else "no adapter for this channel")
        return False
    except AdapterError as err:
        say("error", f"{path.name}: {err}")
        return False
    for note in unread:
        say("warning", f"{path.name}: {note}: left out")
    sys.stdout.write(json.dumps(lead.to_json_dict(), indent=2, ensure_ascii=False) + "\n")
    return True


def _several(path: Path, adapter: Adapter, ctx: ParseContext, body: bytes) -> bool | None:
    """Print the leads of a mail that holds several as one JSON array; None when it holds one."""
    split = split_item(adapter, body, ctx.limits)
    if split.kind is None:
        return None
    what = "a digest" if split.kind == "digest" else "a table of leads attached"
    say("note", f"{path}: {what}: {len(split.pieces)} leads, read one by one")
    leads = []
    for problem in split.problems:
        say("error", f"{path.name}: {problem}")
    for piece in split.pieces:
        try:
            leads.append(adapter.parse(RawItem("email", piece.body, piece.content_type), ctx).to_json_dict())
        except AdapterError as err:
            say("error", f"{path.name}: {err}")
    sys.stdout.write(json.dumps(leads, indent=2, ensure_ascii=False) + "\n")
    return len(leads) == len(split.pieces) and not split.problems


def parse_files(routing: Routing, files: Sequence[Path], *, channel: str | None, kind: str | None) -> bool:
    """Every file, even after one fails; True when all were read."""
    results = [parse_one(routing, path, channel=channel, kind=kind) for path in files]
    return all(results)
