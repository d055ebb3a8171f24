"""`leadrelay poll` as an operator runs it: a table per inbox, a one-line reason on failure."""

from __future__ import annotations

from pathlib import Path

import redis

from leadrelay.testing.dovecot import Dovecot
from leadrelay.testing.mails import enquiries, sample, templates
from leadrelay.testing.processes import service_env
from tests.inbox.support import inbox, mail_leads, read_stored, routing_file
from tests.test_cli import cli


def test_poll_prints_what_it_did_per_inbox_and_enqueues_the_new_leads(
    dovecot: Dovecot, folders, make_runtime, redis_broker: str, tmp_path: Path
) -> None:
    newsletter = next(t for t in templates() if t.path.name == "notalead-newsletter.eml").raw()
    mails = [mail.raw for mail in enquiries(3)]
    folder, done = folders(*mails, mails[0], newsletter), folders(prefix="done")  # one mail twice
    inboxes = {"leads": inbox(dovecot, folder, processed_folder=done)}
    env = service_env(LEADRELAY_CONFIG=str(routing_file(tmp_path, inboxes)), COLUMNS="200")

    result = cli("poll", "--inbox", "leads", env=env)

    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ leads"))
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    assert cells == ["leads", "4", "1", "0", f"5 moved to {done}", ""]  # new: stored for the workers
    assert redis.Redis.from_url(redis_broker).llen("leadrelay.leads") == 4  # 3 leads + the newsletter
    rt = make_runtime(inboxes)
    stored = [lead.id for lead in mail_leads(rt)]
    assert len(stored) == 4
    assert read_stored(rt, stored) == {"new": 3, "ignored": 1}  # what the workers make of them


def test_poll_exits_non_zero_with_a_reason_for_each_inbox_it_could_not_poll(
    dovecot: Dovecot, folders, make_runtime, redis_broker: str, tmp_path: Path
) -> None:
    good = folders(sample("kontor", "email-lead.eml"))
    inboxes = {
        "good": inbox(dovecot, good),
        "wrongpass": inbox(dovecot, folders(), password="nope"),
        "nofolder": inbox(dovecot, "Gone"),
    }
    env = service_env(LEADRELAY_CONFIG=str(routing_file(tmp_path, inboxes)), COLUMNS="200")

    result = cli("poll", env=env)

    assert result.returncode == 1
    errors = dict(line.split(": ", 2)[1:] for line in result.stderr.strip().splitlines())
    assert set(errors) == {"inbox wrongpass", "inbox nofolder"}
    assert errors["inbox wrongpass"].startswith("the server refused the login")
    assert errors["inbox wrongpass"].endswith("check inboxes.wrongpass.username and its password")
    assert (
        errors["inbox nofolder"]
        == "folder 'Gone' does not exist on the server: check inboxes.nofolder.folder"
    )
    assert "│ good" in result.stdout  # the inboxes that worked are still reported

    missing = cli("poll", "--inbox", "nope", env=env)
    assert missing.returncode == 1
    assert (
        "no inbox named 'nope' in the routing file (configured: good, nofolder, wrongpass)" in missing.stderr
    )


def test_poll_json_has_one_row_per_inbox_with_its_counts_and_leads(
    dovecot: Dovecot, folders, make_runtime, redis_broker: str, tmp_path: Path
) -> None:
    import json

    inboxes = {"leads": inbox(dovecot, folders(*(mail.raw for mail in enquiries(2))))}
    env = service_env(LEADRELAY_CONFIG=str(routing_file(tmp_path, inboxes)), COLUMNS="80")

    result = cli("poll", "--json", env=env)

    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)["inboxes"]
    assert (row["inbox"], row["new"], row["duplicate"], row["failed"], row["error"]) == (
        "leads",
        2,
        0,
        0,
        None,
    )
    assert sorted(row["lead_ids"]) == sorted(lead.id for lead in mail_leads(make_runtime(inboxes)))
