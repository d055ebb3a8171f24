"""Any portal without code: labels, senders, JSON paths and patterns from the routing file.

The operator adds ``adapter: configurable`` and a ``parse:`` block to a channel
(docs/channels.md shows the YAML); the result reads webhooks and e-mails exactly
like the hand-written portals, with the shared English, German, French, Dutch and Spanish vocabulary
underneath the channel's own labels. A registered portal's ``parse:`` block
extends that portal the same way.
"""

from __future__ import annotations

import re
from dataclasses import replace

from leadrelay.adapters.parsing.languages import multilingual
from leadrelay.adapters.portal import PortalAdapter
from leadrelay.adapters.spec import EventTable, PortalSpec, patterns, reading_for
from leadrelay.nexudus.enums import LeadSource
from leadrelay.routing import ChannelConfig, ParseConfig

CONFIGURABLE = "configurable"
VOCABULARY = multilingual(german_first=True)


def _events(parse: ParseConfig) -> EventTable:
    return EventTable(
        paths=tuple(parse.events.paths),
        handled=dict(parse.events.handled),
        ignored=frozenset(parse.events.ignored),
        follow_ups=dict(parse.events.follow_ups),
    )


def extend(spec: PortalSpec, parse: ParseConfig) -> PortalSpec:
    """``spec`` with the routing file's additions; configured labels win ties."""
    json_paths = {
        field: (*paths, *spec.json_paths.get(field, ())) for field, paths in parse.json_paths.items()
    }
    events = _events(parse)
    return replace(
        spec,
        labels=spec.labels.extended(parse.labels, custom=True),
        json_paths={**spec.json_paths, **json_paths},
        events=events
        if events.paths or events.handled or events.ignored or events.follow_ups
        else spec.events,
        senders=(*parse.senders, *spec.senders),
        references=patterns(*filter(None, [parse.reference_pattern])) + spec.references,
        listing_patterns=patterns(*filter(None, [parse.listing_pattern])) + spec.listing_patterns,
        ignored_subjects=tuple(
            (re.compile(p, re.IGNORECASE), f"subject matches {p!r}") for p in parse.ignored_subjects
        )
        + spec.ignored_subjects,
        follow_up_subjects=tuple(
            (re.compile(p, re.IGNORECASE), kind) for p, kind in parse.follow_up_subjects.items()
        )
        + spec.follow_up_subjects,
        broker_name=parse.broker_name or spec.broker_name,
        digest_separator=re.compile(parse.digest.separator, re.IGNORECASE)
        if parse.digest.separator
        else spec.digest_separator,
        columns={**spec.columns, **{f: tuple(names) for f, names in parse.attachments.columns.items()}},
        header_row=parse.attachments.header_row
        if "header_row" in parse.attachments.model_fields_set
        else spec.header_row,
        reading=replace(
            spec.reading,
            currency=parse.currency or spec.reading.currency,
            dayfirst=spec.reading.dayfirst if parse.dayfirst is None else parse.dayfirst,
        ),
    )


def build(channel: str, config: ChannelConfig) -> PortalAdapter:
    """A configurable adapter for ``channel`` from its routing entry."""
    country = config.country or "GB"
    base = PortalSpec(
        name=channel,
        lead_source=config.lead_source,
        country=country,
        labels=VOCABULARY,
        reading=reading_for(country),
        broker_name=config.label or LeadSource(config.lead_source).name,
    )
    return PortalAdapter(extend(base, config.parse or ParseConfig()))
