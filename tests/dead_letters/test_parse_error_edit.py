"""A mail that cannot be read names the field to fix; `dlq edit` fills it in and one opportunity follows.

Real Postgres, the Nexudus sandbox and the CLI in subprocesses.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.dead_letters.test_dlq_cli import env_for, routing_file
from tests.dead_letters.test_replay import runtime_for, settle
from tests.helpers import dead_letters, ingest
from tests.test_cli import cli

NO_EMAIL = b"""\
From: Hubble <enquiries@hubblehq.com>
To: leads@foundry-workspace.example
Subject: New enquiry for The Foundry, Old Street (ref enq_7QW2MX4B)
Date: Mon, 30 Nov 2026 11:02:40 +0000
Message-ID: <enq_7QW2MX4B.enquiry@mail.hubblehq.com>
Content-Type: text/plain; charset="utf-8"
MIME-Version: 1.0

Hi Foundry team,

You have a new enquiry from Hubble.

Name: Ines Carvalho
Company: Tidewater Studio
Phone: call the front desk
Desks: 6
Budget: ask me
Move-in date: 1 March 2027
Listing: The Foundry, Old Street (#48213)

Reference: enq_7QW2MX4B
Your account manager: Tom Reeves (tom.reeves@hubblehq.com)
"""

# The operator's $EDITOR: checks the form holds what was read, fills in the one field named.
EDITOR = """\
import json, sys
path = sys.argv[1]
form = json.load(open(path))
assert form["contact"]["email"] is None, form
assert form["contact"]["full_name"] == "Ines Carvalho", form
assert form["external_id"] == "enq_7QW2MX4B", form
assert form["listing"]["id"] == "48213", form
form["contact"]["email"] = "ines@tidewater.example"
json.dump(form, open(path, "w"))
"""


def test_a_mail_without_an_email_names_contact_email_and_dlq_edit_delivers_it_once(
    clean_db, redis_broker, sandbox, tmp_path: Path
) -> None:
    routing = routing_file(tmp_path)
    rt = runtime_for(clean_db, sandbox)
    try:
        lead_id = ingest(rt, NO_EMAIL, channel="hubblehq", source="email")
        assert settle(rt, lead_id) == "dead"
        [letter] = dead_letters(rt, lead_id)
        assert letter.reason == "parse_error"
        assert "contact.email: no e-mail address (looked for labels" in letter.message
        assert "contact.phone: the value of label 'Phone' is not a phone number" in letter.message
        assert "requirements.budget: 'ask me' (label 'Budget') is not an amount" in letter.message
        assert "front desk" not in letter.message  # contact values are described, never quoted

        shown = cli("dlq", "show", str(letter.id), env=env_for(routing))
        assert shown.returncode == 0, shown.stderr
        said = " ".join(shown.stdout.split())
        assert "Fields to fix" in said
        for field in ("contact.email", "contact.phone", "requirements.budget"):
            assert field in said
        assert f"leadrelay dlq edit {letter.id}" in said

        editor = tmp_path / "editor.py"
        editor.write_text(EDITOR)
        env = {**env_for(routing), "EDITOR": f"{sys.executable} {editor}"}
        env.pop("VISUAL", None)
        edited = cli("dlq", "edit", str(letter.id), env=env)
        assert edited.returncode == 0, edited.stderr
        assert "queued to be delivered" in edited.stdout
        assert settle(rt, lead_id) == "delivered"
        assert settle(rt, lead_id) == "delivered"  # settling again sends nothing more

        [opportunity] = sandbox.opportunities()
        assert [c["Email"] for c in sandbox.coworkers()].count("ines@tidewater.example") == 1
        assert opportunity["LeadSource"] == 17
        again = cli("dlq", "edit", str(letter.id), "--file", str(tmp_path / "x.json"), env=env)
        assert again.returncode != 0
        assert len(sandbox.opportunities()) == 1
    finally:
        rt.close()
