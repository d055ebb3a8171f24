"""Proposing a `parse:` block from samples: labels by words and by values, references, webhooks."""

from __future__ import annotations

import json

import yaml

from leadrelay.adapters import RawItem
from leadrelay.adapters.base import ParseContext
from leadrelay.adapters.configurable import build
from leadrelay.adapters.suggest import Sample, suggest
from leadrelay.adapters.suggest.render import to_yaml
from leadrelay.adapters.suggest.values import value_type
from leadrelay.routing import ChannelConfig, ParseConfig, load_routing
from tests.adapters.support import FIXTURES


def _hook(ref: str, email: str, phone: str, team: int, budget: int, start: str) -> Sample:
    body = {
        "event": "lead.created",
        "lead": {
            "uid": ref,
            "person": {"display": "Ana Ruiz", "mail": email, "tel": phone},
            "agent": {"email": "desk@broker.example"},
            "needs": {"headcount": team, "monthly_spend": f"£{budget:,}", "from": start},
        },
    }
    return Sample(f"{ref}.json", json.dumps(body).encode(), "webhook")


HOOKS = [
    _hook("enq_8F2KQ7XW", "ana@ruiz.example", "+44 20 7946 0011", 6, 3000, "2027-02-01"),
    _hook("enq_3JD9PL2M", "li@wei.example", "+44 161 496 0022", 14, 7800, "2027-04-12"),
]


def test_webhook_samples_become_json_paths_that_the_configurable_adapter_reads() -> None:
    suggestion = suggest(HOOKS)
    block = suggestion.parse_block()
    paths = block["json_paths"]
    assert paths["contact.email"] == ["lead.person.mail"]
    assert paths["contact.phone"] == ["lead.person.tel"]
    assert paths["broker.email"] == ["lead.agent.email"]  # an agent's e-mail is not the client's
    assert suggestion.reference_pattern == r"\b(enq_[A-Z0-9]{8,})\b"
    config = ChannelConfig(lead_source=20, adapter="configurable", parse=ParseConfig.model_validate(block))
    adapter = build("roomly", config)
    ctx = ParseContext(channel="roomly", lead_source=20, default_region="GB")
    lead = adapter.parse(RawItem("webhook", HOOKS[1].body), ctx)
    assert (lead.contact.email, lead.contact.phone) == ("li@wei.example", "+441614960022")
    assert lead.broker.email == "desk@broker.example"
    assert lead.requirements.desks is not None and lead.requirements.desks.max == 14
    assert lead.requirements.budget is not None and lead.requirements.budget.max == 7800


def test_the_event_type_of_every_webhook_sample_is_offered_as_a_comment() -> None:
    suggestion = suggest(HOOKS)
    assert suggestion.events == ("event", ("lead.created",))
    text = to_yaml(suggestion, "roomly", 20)
    assert "  # events: {paths: [event], handled: {lead.created: null}}" in text
    assert "senders" not in text  # webhooks have no senders to suggest
    assert yaml.safe_load(text)["parse"]["json_paths"]["contact.email"] == ["lead.person.mail"]


def test_a_token_that_is_the_same_in_every_sample_is_not_a_reference() -> None:
    mails = [
        Sample(
            f"{n}.eml",
            (
                "From: Leads <leads@portal.example>\r\nSubject: New lead PRD-2024\r\n\r\n"
                f"Plan: PRD-2024\r\nEmail: a{n}@b.example\r\n"
            ).encode(),
            "email",
        )
        for n in range(2)
    ]
    assert suggest(mails).reference_pattern is None


def test_value_types() -> None:
    assert [value_type(v) for v in ("x@y.example", "+44 (0)20 7946 0321", "£4,500 pcm", "01/03/2027")] == [
        "e-mail",
        "phone",
        "money",
        "date",
    ]
    assert [value_type(v) for v in ("8-10", "https://a.example/x", "ask me")] == ["integer", "url", "text"]


def test_junk_samples_are_said_unread_and_never_raise() -> None:
    junk = [
        Sample("empty.eml", b"", "email"),
        Sample("binary.eml", bytes(range(256)) * 64, "email"),
        Sample("deep.json", b"[" * 100_000 + b"]" * 100_000, "webhook"),
        Sample("list.json", b"[1, 2]", "webhook"),
        Sample("latin1.json", b'{"name": "\xe9"}', "webhook"),
    ]
    suggestion = suggest(junk)
    assert [why.split(":")[0] for why in suggestion.unread] == ["deep.json", "list.json", "latin1.json"]
    assert suggestion.reference_pattern is None and suggestion.parse_block() == {}


def test_the_deskbridge_block_in_the_fixture_routing_is_what_suggest_prints() -> None:
    folder = FIXTURES / "configurable" / "deskbridge"
    samples = [Sample(p.name, p.read_bytes(), "email") for p in sorted(folder.glob("*.eml"))]
    printed = yaml.safe_load(to_yaml(suggest(samples), "deskbridge", 99))
    routing = load_routing(FIXTURES / "configurable" / "routing.yaml")
    assert ParseConfig.model_validate(printed["parse"]) == routing.channels["deskbridge"].parse
    assert printed["adapter"] == routing.channels["deskbridge"].adapter == "configurable"
