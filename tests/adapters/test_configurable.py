"""A portal without code: the configurable adapter reads what the routing file describes."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadrelay.adapters import NotALead, ParseError, RawItem
from leadrelay.adapters.portal import PortalAdapter
from leadrelay.adapters.registry import ADAPTERS, UnknownAdapterError, adapter_for
from leadrelay.routing import ChannelConfig, ParseConfig, RoutingError, load_routing, parse_routing
from leadrelay.testing.partners import Case, cases
from tests.adapters.support import FIXTURES, context, mismatches

CONFIGURABLE = FIXTURES / "configurable"
ROUTING = load_routing(CONFIGURABLE / "routing.yaml")
CASES = cases(CONFIGURABLE)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.key)
def test_spacepool_items_read_by_configuration_alone(case: Case) -> None:
    ctx, adapter = context(case.channel, ROUTING)
    if "_raises" in case.expected:
        with pytest.raises(NotALead):
            adapter.parse(case.item(), ctx)
        return
    assert mismatches(adapter.parse(case.item(), ctx), case.expected) == {}


def test_ignored_event_types_from_the_routing_file_are_not_leads() -> None:
    ctx, adapter = context("spacepool", ROUTING)
    with pytest.raises(NotALead, match="enquiry_update"):
        adapter.parse(
            RawItem("webhook", b'{"action": "enquiry_update", "enquiry": {"ref": "SP-204518"}}'), ctx
        )
    with pytest.raises(ParseError, match="unsupported event type 'mystery'"):
        adapter.parse(RawItem("webhook", b'{"action": "mystery", "enquiry": {"ref": "SP-1"}}'), ctx)


def test_a_configurable_channel_without_a_parse_block_reads_the_shared_vocabulary() -> None:
    ctx, adapter = context("instantoffices", ROUTING)
    mail = (
        b"From: Instant Offices <leads@instantoffices.example>\r\nSubject: New lead\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Full name: Dan Moss\r\nE-mail: dan@moss.example\r\nNo. of desks: 4\r\n"
    )
    lead = adapter.parse(RawItem("email", mail), ctx)
    assert (lead.channel, lead.lead_source, lead.contact.full_name, lead.contact.email) == (
        "instantoffices",
        21,
        "Dan Moss",
        "dan@moss.example",
    )
    assert lead.requirements.desks is not None and lead.requirements.desks.max == 4
    assert lead.broker.name == "InstantOffices"


def test_a_registered_portal_takes_extra_labels_from_its_parse_block() -> None:
    ctx, adapter = context("hubblehq", ROUTING)
    assert adapter is not ADAPTERS["hubblehq"]
    mail = (
        b"From: Hubble <enquiries@hubblehq.com>\r\nSubject: New enquiry (ref enq_ABCD1234)\r\n\r\n"
        b"Tenant contact: Lee Fox\r\nEmail: lee@fox.example\r\n"
    )
    assert adapter.parse(RawItem("email", mail), ctx).contact.full_name == "Lee Fox"


def test_adapter_for_uses_the_registry_then_the_channel_name() -> None:
    assert adapter_for("hubblehq", ChannelConfig(lead_source=17)) is ADAPTERS["hubblehq"]
    assert adapter_for("hubble-uk", ChannelConfig(lead_source=17, adapter="hubblehq")) is ADAPTERS["hubblehq"]
    built = adapter_for(
        "spacepool", ChannelConfig(lead_source=20, parse=ParseConfig(senders=["spacepool.co.uk"]))
    )
    assert (
        isinstance(built, PortalAdapter)
        and built.name == "spacepool"
        and built.senders == ("spacepool.co.uk",)
    )


def test_adapter_for_an_unknown_channel_names_it() -> None:
    with pytest.raises(KeyError) as caught:
        adapter_for("officefreedom", ChannelConfig(lead_source=22))
    assert isinstance(caught.value, UnknownAdapterError)
    assert "officefreedom" in str(caught.value) and "configurable" in str(caught.value)


def _routing_with(parse: object) -> dict[str, object]:
    return {"channels": {"spacepool": {"lead_source": 20, "adapter": "configurable", "parse": parse}}}


@pytest.mark.parametrize(
    ("parse", "complaint"),
    [
        (
            {"labels": {"contact.mail": ["E-mail"]}},
            "channels.spacepool.parse.labels: unknown field contact.mail",
        ),
        ({"json_paths": {"budget": "x.y"}}, "channels.spacepool.parse.json_paths: unknown field budget"),
        ({"reference_pattern": "SP-(\\d+"}, "channels.spacepool.parse.reference_pattern"),
        (  # minutes of backtracking on one long line of a hostile mail
            {"ignored_subjects": ["^(\\w+\\s?)+$"]},
            "channels.spacepool.parse.ignored_subjects: '^(\\\\w+\\\\s?)+$' repeats a repetition",
        ),
        ({"lables": {}}, "channels.spacepool.parse.lables"),
        ({"events": {"handled": {"x": "visit"}}}, "channels.spacepool.parse.events.handled.x"),
        ({"currency": "pounds"}, "channels.spacepool.parse.currency"),
    ],
)
def test_bad_parse_blocks_are_refused_naming_the_key(parse: object, complaint: str) -> None:
    with pytest.raises(RoutingError) as caught:
        parse_routing(_routing_with(parse), "test")
    assert any(p.startswith(complaint) for p in caught.value.problems), caught.value.problems


def test_docs_show_the_configurable_yaml_that_the_tests_use() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "channels.md").read_text("utf-8")
    for line in (
        "adapter: configurable",
        "reference_pattern:",
        "json_paths:",
        "labels:",
        "senders:",
        "events:",
    ):
        assert line in docs
