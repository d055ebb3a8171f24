"""Whatever arrives, ``parse`` answers with a valid lead, ParseError or NotALead — nothing else.

Hypothesis mutates every sample and variation (dropped keys, changed types,
truncated or flipped bytes, shuffled lines, random unicode) and feeds plain
garbage to every adapter through both doors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrelay.adapters import NotALead, ParseError, RawItem
from leadrelay.adapters.registry import ADAPTERS
from leadrelay.canonical import CanonicalLead
from leadrelay.testing.partners import Case, partner_cases
from tests.adapters.support import context

ITEMS = partner_cases()
WEBHOOKS = [c for c in ITEMS if c.path.suffix == ".json"]
PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)


def _outcome(channel: str, item: RawItem) -> CanonicalLead | None:
    ctx, adapter = context(channel)
    try:
        lead = adapter.parse(item, ctx)
    except (ParseError, NotALead) as err:
        message = str(err)
        assert message and "\n" not in message
        assert message.startswith(f"{channel} ") or channel == "canonical"
        return None
    assert isinstance(lead, CanonicalLead)
    CanonicalLead.model_validate(lead.model_dump())
    assert "\\u0000" not in json.dumps(lead.to_json_dict())  # Postgres JSONB could not store it
    assert lead.contact.email or lead.contact.phone
    assert lead.channel == channel
    return lead


def _mutate_json(data: Any, draw: Callable[[st.SearchStrategy[Any]], Any]) -> Any:
    if isinstance(data, dict) and data:
        data = dict(data)
        key = draw(st.sampled_from(sorted(data)))
        action = draw(st.sampled_from(["drop", "retype", "recurse", "null"]))
        if action == "drop":
            del data[key]
        elif action == "retype":
            data[key] = draw(JSON_VALUES)
        elif action == "null":
            data[key] = None
        else:
            data[key] = _mutate_json(data[key], draw)
        return data
    if isinstance(data, list) and data:
        return [_mutate_json(v, draw) for v in data]
    return draw(JSON_VALUES)


@PROFILE
@given(st.data())
def test_mutated_webhooks_never_escape(data: st.DataObject) -> None:
    case: Case = data.draw(st.sampled_from(WEBHOOKS))
    payload = json.loads(case.path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        payload = _mutate_json(payload, data.draw)
    _outcome(case.channel, RawItem("webhook", json.dumps(payload).encode()))


@PROFILE
@given(st.data())
def test_damaged_bytes_never_escape(data: st.DataObject) -> None:
    case: Case = data.draw(st.sampled_from(ITEMS))
    body = bytearray(case.path.read_bytes())
    damage = data.draw(st.sampled_from(["truncate", "flip", "insert", "shuffle", "unicode"]))
    if damage == "truncate":
        body = body[: data.draw(st.integers(0, len(body)))]
    elif damage == "flip":
        for index in data.draw(st.lists(st.integers(0, len(body) - 1), max_size=20)):
            body[index] = data.draw(st.integers(0, 255))
    elif damage == "insert":
        at = data.draw(st.integers(0, len(body)))
        body[at:at] = data.draw(st.binary(max_size=200))
    elif damage == "shuffle":
        lines = bytes(body).split(b"\n")
        body = bytearray(b"\n".join(data.draw(st.permutations(lines))))
    else:
        at = data.draw(st.integers(0, len(body)))
        body[at:at] = data.draw(st.text(max_size=80)).encode("utf-8", "surrogatepass")
    _outcome(case.channel, RawItem(case.item().kind, bytes(body)))


@PROFILE
@given(
    channel=st.sampled_from(sorted(ADAPTERS)),
    kind=st.sampled_from(["webhook", "email"]),
    body=st.binary(max_size=2000) | st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
def test_garbage_never_escapes(channel: str, kind: str, body: bytes) -> None:
    _outcome(channel, RawItem(kind, body))  # type: ignore[arg-type]


@PROFILE
@given(channel=st.sampled_from(sorted(ADAPTERS)), payload=JSON_VALUES)
def test_arbitrary_json_never_escapes(channel: str, payload: Any) -> None:
    _outcome(channel, RawItem("webhook", json.dumps(payload).encode()))


@PROFILE
@given(
    channel=st.sampled_from(sorted(set(ADAPTERS) - {"canonical"})),
    lines=st.lists(st.tuples(st.text(max_size=25), st.text(max_size=40)), max_size=12),
    subject=st.text(max_size=60),
)
def test_arbitrary_label_value_mail_never_escapes(
    channel: str, lines: list[tuple[str, str]], subject: str
) -> None:
    text = "\n".join(f"{label}: {value}" for label, value in lines)
    raw = f"From: x@example.com\nSubject: {subject}\nContent-Type: text/plain; charset=utf-8\n\n{text}\n"
    _outcome(channel, RawItem("email", raw.encode("utf-8", "surrogatepass")))
