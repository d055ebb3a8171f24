"""`leadrelay dlq` as an operator uses it, on the real Postgres and Redis."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from sqlalchemy import select

from leadrelay.models import Lead, LeadState
from tests.conftest import OPEN_BUDGET, REDIS_URL, UNTHROTTLED
from tests.dead_letters.test_replay import GOOD_ROUTING, routing_with, runtime_for, settle
from tests.helpers import canonical, dead_letters, ingest
from tests.test_cli import cli


def routing_file(tmp_path: Path, **changes: object) -> Path:
    data = GOOD_ROUTING.model_dump(mode="json", exclude_none=True)
    data["accounts"]["main"]["limits"] = {**data["accounts"]["main"]["limits"], **UNTHROTTLED}
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    for channel in data["channels"].values():  # webhook secrets are plain text in the file
        if "webhook" in channel:
            channel["webhook"]["secret"] = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def env_for(routing: Path) -> dict[str, str]:
    return {**os.environ, "LEADRELAY_CONFIG": str(routing), "COLUMNS": "200"}


def test_a_rejected_lead_is_listed_fixed_replayed_once_and_replaying_again_changes_nothing(
    clean_db, redis_broker, sandbox, tmp_path: Path
) -> None:
    broken_column = {**GOOD_ROUTING.locations["foundry"].model_dump(), "board_column_id": 2999}
    broken = routing_file(tmp_path, locations={"foundry": broken_column})
    rt = runtime_for(clean_db, sandbox)
    try:
        lead_id = ingest(rt, canonical())
        bad_routing = routing_with(accounts=OPEN_BUDGET, locations={"foundry": broken_column})
        bad_rt = runtime_for(clean_db, sandbox, bad_routing)
        assert settle(bad_rt, lead_id) == "dead"
        bad_rt.close()

        listed = cli("dlq", "list", env=env_for(broken))
        assert listed.returncode == 0, listed.stderr
        assert "validation" in listed.stdout
        assert "CrmBoardColumnId" in listed.stdout  # Nexudus's own words
        [letter] = dead_letters(rt, lead_id)

        shown = cli("dlq", "show", str(letter.id), env=env_for(broken))
        assert shown.returncode == 0, shown.stderr
        for part in (
            "Nexudus errors",
            "CrmBoardColumnId",
            "opportunity.create",
            "Canonical lead",
            "Raw input",
        ):
            assert part in shown.stdout

        fixed = routing_file(tmp_path)
        dry = cli("dlq", "replay", "--all", "--dry-run", env=env_for(fixed))
        assert "1 would_replay" in dry.stdout
        assert dead_letters(rt, lead_id)[0].status == "open"

        replayed = cli("dlq", "replay", "--all", env=env_for(fixed))
        assert replayed.returncode == 0, replayed.stderr
        assert "1 queued" in replayed.stdout
        assert settle(rt, lead_id) == "delivered"
        assert len(sandbox.opportunities()) == 1

        again = cli("dlq", "replay", str(letter.id), env=env_for(fixed))
        assert again.returncode == 1
        assert "already replayed" in again.stdout
        assert (
            cli("dlq", "replay", "--all", env=env_for(fixed)).stdout.strip() == "No open dead letters match."
        )
        assert settle(rt, lead_id) == "delivered"
        assert len(sandbox.opportunities()) == 1
    finally:
        rt.close()


def test_bulk_replay_of_200_with_a_filter(clean_db, redis_broker, sandbox, tmp_path: Path) -> None:
    unrouted = routing_file(tmp_path, defaults={"location": None})
    rt = runtime_for(clean_db, sandbox, routing_with(accounts=OPEN_BUDGET, defaults={"location": None}))
    try:
        ids = [
            ingest(
                rt,
                canonical(
                    external_id=f"bulk-{n:03}",
                    contact={"email": f"p{n}@example.com"},
                    listing={"id": "annex"},
                ),
            )
            for n in range(200)
        ]
        other = ingest(rt, canonical(external_id="parse-1", contact={"full_name": "nobody"}))
        assert {settle(rt, i) for i in [*ids, other]} == {"dead"}
    finally:
        rt.close()

    listing = cli("dlq", "list", "--reason", "routing", "--limit", "500", env=env_for(unrouted))
    assert listing.stdout.count("routing") >= 200
    result = cli(
        "dlq", "replay", "--all", "--reason", "routing", env=env_for(routing_file(tmp_path)), timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "200 queued" in result.stdout

    import redis

    assert redis.Redis.from_url(REDIS_URL).llen("leadrelay.leads") == 200  # enqueued after commit
    rt = runtime_for(clean_db, sandbox)
    try:
        assert {settle(rt, i) for i in ids} == {"delivered"}
        assert len(sandbox.opportunities()) == 200
        assert [d.reason for d in dead_letters(rt) if d.status == "open"] == ["parse_error"]
    finally:
        rt.close()


def test_edit_from_a_file_and_discard(clean_db, redis_broker, sandbox, tmp_path: Path) -> None:
    routing = routing_file(tmp_path)
    rt = runtime_for(clean_db, sandbox)
    try:
        phone_only = ingest(rt, canonical(contact={"full_name": "Caller", "phone": "+442079460000"}))
        junk = ingest(rt, canonical(external_id="junk", contact={"full_name": "nobody"}))
        assert settle(rt, phone_only) == settle(rt, junk) == "dead"
        [letter] = dead_letters(rt, phone_only)
        [junk_letter] = dead_letters(rt, junk)

        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"contact": {"email": "nope"}}))
        refused = cli("dlq", "edit", str(letter.id), "--file", str(bad), env=env_for(routing))
        assert refused.returncode == 1
        assert "contact.email: is not an e-mail address" in refused.stderr
        assert f"leadrelay dlq edit {letter.id} --file" in refused.stderr

        good = tmp_path / "good.json"
        good.write_text(
            json.dumps({**canonical(), "contact": {"full_name": "Caller", "email": "caller@example.com"}})
        )
        edited = cli("dlq", "edit", str(letter.id), "--file", str(good), env=env_for(routing))
        assert edited.returncode == 0, edited.stderr
        assert "queued to be delivered" in edited.stdout
        assert settle(rt, phone_only) == "delivered"

        no_reason = cli("dlq", "discard", str(junk_letter.id), env=env_for(routing))
        assert no_reason.returncode != 0
        done = cli("dlq", "discard", str(junk_letter.id), "--why", "spam", env=env_for(routing))
        assert done.returncode == 0, done.stderr
        assert cli("dlq", "list", env=env_for(routing)).stdout.strip() == "No open dead letters."
        with rt.sessions() as session:
            assert session.execute(select(Lead.state).where(Lead.id == junk)).scalar_one() == LeadState.dead
    finally:
        rt.close()


def test_show_of_a_missing_dead_letter_is_one_line(clean_db, tmp_path: Path) -> None:
    result = cli("dlq", "show", "424242", env=env_for(routing_file(tmp_path)))
    assert result.returncode == 1
    assert "no dead letter 424242" in result.stderr
    assert "Traceback" not in result.stderr
