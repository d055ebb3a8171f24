"""`leadrelay channels suggest` → routing file → `leadrelay parse`: a new portal taught from its mails."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

from tests.test_cli import cli, documents

DESKBRIDGE = Path(__file__).parent / "fixtures" / "configurable" / "deskbridge"
SAMPLES = sorted(DESKBRIDGE.glob("*.eml"))
ROUTING_HEAD = """\
accounts:
  main: {}
locations:
  foundry:
    account: main
    business_id: 1001
    board_column_id: 2001
    country: GB
    country_id: 1
    timezone_id: 52
channels:
  deskbridge:
"""

EXPECTED = {  # by reference: what each sample mail says
    "DB-48213": ("priya.raman@larkspur-analytics.example", "+442079460321", (12, 12), 6500, "2027-02-01"),
    "DB-50022": ("t.oduya@brightwell-kerr.example", "+447700900418", (8, 10), 4200, "2027-03-15"),
    "DB-51107": ("hannah@northwind-studio.example", "+441614960734", (25, 25), 11000, "2027-01-04"),
}


def test_suggest_then_parse_reads_an_unknown_portal_from_its_own_samples(tmp_path: Path) -> None:
    suggested = cli("channels", "suggest", "--name", "deskbridge", "--lead-source", "20", *map(str, SAMPLES))
    assert suggested.returncode == 0, suggested.stderr
    block = suggested.stdout
    assert "adapter: configurable" in block and "senders: [deskbridge.io]" in block
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING_HEAD + textwrap.indent(block, "    "), "utf-8")

    env = {**os.environ, "LEADRELAY_CONFIG": str(routing)}
    parsed = cli("parse", "--channel", "deskbridge", *map(str, SAMPLES), env=env)
    assert parsed.returncode == 0, parsed.stderr
    leads = documents(parsed.stdout)
    assert len(leads) == len(SAMPLES)
    got = {
        lead["external_id"]: (
            lead["contact"]["email"],
            lead["contact"]["phone"],
            (lead["requirements"]["desks"]["min"], lead["requirements"]["desks"]["max"]),
            lead["requirements"]["budget"]["max"],
            lead["requirements"]["start_date"],
        )
        for lead in leads
    }
    assert got == EXPECTED
    assert {lead["requirements"]["budget"]["currency"] for lead in leads} == {"GBP"}
    assert {lead["requirements"]["budget"]["period"] for lead in leads} == {"month"}

    unseen = cli("parse", "--channel", "deskbridge", str(DESKBRIDGE / "unseen" / "html-only.eml"), env=env)
    assert unseen.returncode == 0, unseen.stderr  # an HTML-only mail in windows-1252 it was not built from
    [lead] = documents(unseen.stdout)
    assert (lead["external_id"], lead["contact"]["email"], lead["contact"]["phone"]) == (
        "DB-53390",
        "renee@atelier-fournier.example",
        "+442079460958",
    )
    assert lead["contact"]["full_name"] == "Renée Fournier"
    assert (lead["requirements"]["desks"]["max"], lead["requirements"]["budget"]["max"]) == (4, 2400)
    assert lead["requirements"]["start_date"] == "2027-02-02"

    detected = cli("parse", str(SAMPLES[0]), env=env)  # the suggested senders: detection finds it
    assert detected.returncode == 0, detected.stderr
    assert "channel deskbridge" in detected.stderr


def test_suggest_json_says_what_it_is_unsure_of() -> None:
    result = cli("channels", "suggest", "--json", *map(str, SAMPLES))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    fields = {entry["label"]: entry for entry in data["fields"]}
    assert fields["Reply address"]["field"] == "contact.email" and not fields["Reply address"]["sure"]
    assert fields["Organisation"]["field"] == "contact.company" and fields["Organisation"]["sure"]
    assert fields["Their note"]["in_every_sample"] is False
    assert data["reference_pattern"] == r"\b(DB-\d{5,})\b"
    assert data["parse"]["senders"] == ["deskbridge.io"]
    assert "priya" not in result.stdout.lower()  # types, never the values: samples are personal data


def test_suggest_refuses_unreadable_samples_with_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2]")
    result = cli("channels", "suggest", str(junk), str(tmp_path / "missing.eml"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr and "Traceback" not in result.stderr
    result = cli("channels", "suggest", str(junk))
    assert result.returncode == 2
    assert "junk.json: the body is not a JSON object" in result.stderr


def test_parse_warns_about_a_labelled_value_it_left_out(tmp_path: Path) -> None:
    suggested = cli("channels", "suggest", "--lead-source", "20", *map(str, SAMPLES))
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING_HEAD + textwrap.indent(suggested.stdout, "    "), "utf-8")
    vague = tmp_path / "vague.eml"
    vague.write_bytes(
        (DESKBRIDGE / "enquiry-forwarded.eml").read_bytes().replace("£11,000 per month".encode(), b"ask me")
    )
    env = {**os.environ, "LEADRELAY_CONFIG": str(routing)}
    parsed = cli("parse", "--channel", "deskbridge", str(vague), env=env)
    assert parsed.returncode == 0, parsed.stderr
    assert "requirements.budget: 'ask me' (label 'Spend ceiling') is not an amount: left out" in parsed.stderr
    [lead] = documents(parsed.stdout)
    assert (
        lead["requirements"]["budget"] is None
        and lead["contact"]["email"] == "hannah@northwind-studio.example"
    )
