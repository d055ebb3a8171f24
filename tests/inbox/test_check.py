"""`leadrelay check` names every mistake of a broken routing file: real sandbox, real Dovecot."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from leadrelay.config_check import remembered
from leadrelay.routing import parse_routing
from leadrelay.testing.dovecot import Dovecot
from leadrelay.testing.processes import service_env
from leadrelay.worker.config_check import full_check, inbox_problems, nexudus_problems
from tests.conftest import make_settings
from tests.inbox.oauth_server import AuthServer
from tests.inbox.support import inbox
from tests.inbox.test_oauth import oauth_inbox

SECRET = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="


def location(business: int, column: int, **extra: Any) -> dict[str, Any]:
    return {"account": "main", "business_id": business, "board_column_id": column, "country": "GB",
            "country_id": 1, "timezone_id": 52, **extra}  # fmt: skip


def broken_routing(dovecot: Dovecot, folder: str) -> dict[str, Any]:
    return {
        "accounts": {"main": {}, "other": {"username": "sandbox@leadrelay.local", "password": "wrong"}},
        "locations": {
            "good": location(1001, 2001, listings={"hubblehq": ["1"]}),
            "nobusiness": location(4242, 2001),  # 1. no such business
            "foreign": location(1001, 2002),  # 2. 2002 is Mission Hub's column
            "nocolumn": location(1002, 2999),  # 3. no such column
            "nocountry": location(1003, 2003, country_id=99),  # 4. no such country
            "nozone": location(1003, 2003, timezone_id=999),  # 5. no such time zone
            "wrongcode": location(1002, 2002, country="US"),  # 6. country_id 1 is GB
            "noagent": location(1001, 2001, agent_ids={"kontor": 3888}),  # 7. no such coworker
            # 7b. a channel's column on another location's board
            "bychannel": location(1001, 2001, by_channel={"hubblehq": {"board_column_id": 2102}}),
            "elsewhere": {**location(1001, 2001), "account": "other"},  # (not looked up: login fails)
        },
        "channels": {
            "hubblehq": {"lead_source": 17, "agent_id": 3999, "webhook": {"secret": SECRET}},  # 8. agent
            "kontor": {"lead_source": 25, "agent_id": 3005, "webhook": {"secret_env": "NO_SUCH_VAR"}},  # 9.
        },
        "inboxes": {
            "good": inbox(dovecot, folder),
            "badpassword": {**inbox(dovecot, folder), "password": "not-the-password"},  # 10.
            "nofolder": inbox(dovecot, "No-Such-Folder"),  # 11.
            "noprocessed": inbox(dovecot, folder, processed_folder="Nope-Processed"),  # 12.
        },
        # 13. accounts.other: its login is refused
    }


EXPECTED = [
    "locations.nobusiness.business_id: 4242 is not a business",
    "locations.foreign.board_column_id: 2002 is not a column of business 1001's boards",
    "locations.nocolumn.board_column_id: 2999 is not a CRM board column",
    "locations.nocountry.country_id: 99 is not a country",
    "locations.nozone.timezone_id: 999 is not a time zone",
    "locations.wrongcode.country: US, but country_id 1 is GB",
    "locations.noagent.agent_ids.kontor: 3888 is not a coworker",
    "locations.bychannel.by_channel.hubblehq.board_column_id: 2102 is not a column of business 1001's boards",
    "channels.hubblehq.agent_id: 3999 is not a coworker",
    "channels.kontor.webhook.secret_env: environment variable NO_SUCH_VAR is not set",
    "inboxes.badpassword: the server refused the login",
    "inboxes.nofolder.folder: folder 'No-Such-Folder' does not exist",
    "inboxes.noprocessed.processed_folder: folder 'Nope-Processed' does not exist",
    "accounts.other: the Nexudus login failed",
]


def _matches(problems: list[str]) -> None:
    for expected in EXPECTED:
        assert [p for p in problems if p.startswith(expected)], f"not named: {expected}\n" + "\n".join(
            problems
        )
    assert len(problems) == len(EXPECTED), "\n".join(problems)  # one line per problem, nothing else
    assert not [p for p in problems if "good" in p.split(":")[0]]


def test_check_names_every_mistake(
    tmp_path: Path, sandbox: Any, dovecot: Dovecot, folders: Callable[..., str]
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(broken_routing(dovecot, folders())))
    env = service_env(
        LEADRELAY_CONFIG=str(path),
        NEXUDUS_BASE_URL=sandbox.base_url,
        NEXUDUS_USERNAME="sandbox@leadrelay.local",
        NEXUDUS_PASSWORD="sandbox",
        COLUMNS="300",
    )
    run = [sys.executable, "-m", "leadrelay.cli", "check"]
    text = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert text.returncode == 1, text.stdout + text.stderr
    _matches([line for line in text.stderr.splitlines() if line.strip()])
    as_json = subprocess.run(
        [*run, "--json"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    _matches(report["problems"])
    assert report["accounts"] == {"main": "ok", "other": "refused"}
    assert report["inboxes"] == {"good": "ok", "badpassword": "failed", "nofolder": "ok", "noprocessed": "ok"}
    assert {c["channel"]: c["scheme"] for c in report["channels"]} == {
        "hubblehq": "standard-webhooks",
        "kontor": "standard-webhooks",
    }
    assert "not-the-password" not in as_json.stdout + text.stdout + text.stderr  # secrets are never shown


def test_a_good_file_passes_in_process(sandbox: Any, dovecot: Dovecot, folders: Callable[..., str]) -> None:
    good = broken_routing(dovecot, folders())
    good["locations"] = {"good": good["locations"]["good"]}
    good["channels"]["hubblehq"]["agent_id"] = 3001
    good["channels"]["kontor"]["webhook"] = {"secret": SECRET}
    good["inboxes"] = {"good": good["inboxes"]["good"]}
    good["accounts"] = {"main": {}}
    settings = make_settings(
        config=None,
        nexudus_base_url=sandbox.base_url,
        nexudus_username="sandbox@leadrelay.local",
        nexudus_password="sandbox",
    )
    routing = parse_routing(good, "test")
    assert nexudus_problems(settings, routing) == ([], {"main": "ok"})
    assert inbox_problems(routing) == ([], {"good": "ok"})
    report = full_check(settings)  # the embedded routing (allowed in the tests) is right too
    assert report.ok, report.problems
    assert report.form == "full" and report.details["accounts"] == {"main": "ok"}
    assert remembered() == {} or "full" not in remembered()  # only the CLI records a check


def test_check_logs_in_to_an_oauth2_inbox(
    dovecot: Dovecot, auth_server: AuthServer, folders: Callable[..., str]
) -> None:
    folder = folders()
    routing = parse_routing(
        {
            "inboxes": {
                "m365": oauth_inbox(dovecot, folder, auth_server),
                "revoked": oauth_inbox(
                    dovecot, folder, auth_server, client_id="not-our-app", client_secret="wrong"
                ),
            }
        },
        "test",
    )
    problems, states = inbox_problems(routing)
    assert states == {"m365": "ok", "revoked": "failed"}
    assert "method=XOAUTH2" in dovecot.log()
    (problem,) = problems
    assert problem.startswith("inboxes.revoked: the token endpoint ")
    assert "check inboxes.revoked.oauth2.client_id, client_secret, scope" in problem
