"""A :class:`Suggestion` as YAML to paste under ``channels.<name>:``, with comments, or as JSON."""

from __future__ import annotations

import json
import re
from typing import Any

from leadrelay.adapters.suggest import Mapping, Suggestion

_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9 .()/'&+-]*$")
_RESERVED = frozenset(("yes", "no", "on", "off", "true", "false", "null", "y", "n"))


def scalar(text: str) -> str:
    """``text`` as a YAML scalar: plain when that is safe, else single-quoted (regexes stay readable)."""
    if _PLAIN.match(text) and text.lower() not in _RESERVED and not text.endswith((" ", ".")):
        return text
    return "'" + text.replace("'", "''") + "'"


def _note(mapping: Mapping, samples: int) -> str:
    where = "every sample" if mapping.seen_in == samples else f"only {mapping.seen_in} of {samples} samples"
    return f"{mapping.value_type}, in {where}" + ("" if mapping.sure else f"; CHECK: {mapping.why}")


def to_yaml(suggestion: Suggestion, channel: str = "newportal", lead_source: int | None = None) -> str:
    """The channel entry: ``adapter: configurable`` and the ``parse:`` block, commented."""
    n = suggestion.samples
    lines = [
        f"# channels.{channel}: suggested by `leadrelay channels suggest` from {n} sample(s);",
        f"# check each CHECK line, set lead_source, then try it: leadrelay parse --channel {channel} FILE…",
        f"lead_source: {lead_source}"
        if lead_source is not None
        else "lead_source: 0          # TODO: the Nexudus LeadSource number for this portal",
        "adapter: configurable",
        "parse:",
    ]
    if suggestion.senders:
        lines.append(f"  senders: [{', '.join(scalar(s) for s in suggestion.senders)}]")
    elif suggestion.kind != "webhook":
        lines.append("  # senders: no sender domain found in the samples")
    if suggestion.reference_pattern:
        where = "subject and body" if suggestion.reference_in_subject else "body"
        lines.append(
            f"  reference_pattern: {scalar(suggestion.reference_pattern)}   # in the {where} of every sample"
        )
    else:
        lines.append("  # reference_pattern: no reference-like token (REF-12345) is in every sample")
    for key, is_path in (("labels", False), ("json_paths", True)):
        mapped = [m for m in suggestion.mappings if m.field and m.is_path == is_path]
        if not mapped:
            continue
        lines.append(f"  {key}:")
        by_field: dict[str, list[Mapping]] = {}
        for mapping in mapped:
            by_field.setdefault(str(mapping.field), []).append(mapping)
        for field, group in by_field.items():
            for mapping in group:
                lines.append(f"    # {scalar(mapping.label)}: {_note(mapping, n)}")
            lines.append(f"    {field}: [{', '.join(scalar(m.label) for m in group)}]")
    for mapping in suggestion.mappings:
        if mapping.field is None:
            where = f"{mapping.seen_in}/{n} samples"
            lines.append(f"  # not mapped: {mapping.label!r} ({mapping.value_type}, {where}): {mapping.why}")
    if suggestion.events:
        path, seen = suggestion.events
        handled = ", ".join(f"{scalar(event)}: null" for event in seen)
        lines.append(f"  # every sample says its event type in {path!r}; to make other types parse errors:")
        lines.append(f"  # events: {{paths: [{scalar(path)}], handled: {{{handled}}}}}")
    for unread in suggestion.unread:
        lines.append(f"  # not read: {unread}")
    return "\n".join(lines) + "\n"


def to_json(suggestion: Suggestion) -> dict[str, Any]:
    return {
        "samples": suggestion.samples,
        "kind": suggestion.kind,
        "senders": list(suggestion.senders),
        "reference_pattern": suggestion.reference_pattern,
        "fields": [
            {
                "label": m.label,
                "field": m.field,
                "sure": m.sure,
                "why": m.why,
                "value_type": m.value_type,
                "seen_in": m.seen_in,
                "in_every_sample": m.seen_in == suggestion.samples,
                "json_path": m.is_path,
            }
            for m in suggestion.mappings
        ],
        "unread": list(suggestion.unread),
        "events": None
        if suggestion.events is None
        else {"path": suggestion.events[0], "seen": list(suggestion.events[1])},
        "parse": suggestion.parse_block(),
    }


def dumps(suggestion: Suggestion) -> str:
    return json.dumps(to_json(suggestion), indent=2, ensure_ascii=False)
