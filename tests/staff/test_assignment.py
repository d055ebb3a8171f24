"""ResponsibleId assignment: fixed, round-robin and least-open, decided in the ledger once per enquiry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select, update

from leadrelay.config_check import light_check
from leadrelay.db import transaction, utcnow
from leadrelay.models import Assignment, AssignmentPool, DeadLetter
from leadrelay.routing import RoutingError
from leadrelay.runtime import Runtime
from leadrelay.worker.dead_letters import replay
from leadrelay.worker.pipeline import process
from tests.conftest import OPEN_BUDGET, make_settings, routing_with, sandbox_settings
from tests.helpers import canonical, ingest, lead


def person(n: int) -> dict[str, Any]:
    return canonical(external_id=f"as-{n}", contact={"full_name": f"Client {n}", "email": f"c{n}@as.example"})


@pytest.fixture
def rules(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return list(request.param)


@pytest.fixture
def rt(clean_db: str, sandbox: Any, rules: list[dict[str, Any]]) -> Iterator[Runtime]:
    routing = routing_with(accounts=OPEN_BUDGET, assignment=rules)
    runtime = Runtime.load(sandbox_settings(clean_db, sandbox, budget_wait_seconds=1.0), routing)
    yield runtime
    runtime.close()


def responsible(sandbox: Any, rt: Runtime, lead_id: int) -> int | None:
    row = lead(rt, lead_id)
    [opportunity] = [o for o in sandbox.opportunities() if o["Id"] == row.opportunity_id]
    return opportunity.get("ResponsibleId")


def turns(rt: Runtime, pool: str) -> int:
    with transaction(rt.sessions) as session:
        return session.execute(select(AssignmentPool.turns).where(AssignmentPool.pool == pool)).scalar_one()


ROUND = [{"pool": "sales", "staff": [501, 502, 503]}]


@pytest.mark.parametrize("rules", [ROUND], indirect=True)
def test_round_robin_goes_round_and_a_replay_keeps_its_pick(rt: Runtime, sandbox: Any) -> None:
    first = [ingest(rt, person(n)) for n in range(2)]
    assert [process(rt, i, owner="w") for i in first] == ["delivered", "delivered"]
    assert [responsible(sandbox, rt, i) for i in first] == [501, 502]

    # Nexudus refuses the third create: the lead is dead with its pick made (503) ...
    refused = ingest(rt, person(2))
    sandbox.add_fault("status", method="POST", path_regex="crmopportunities$", status=400, times=1)
    assert process(rt, refused, owner="w") == "dead"
    assert turns(rt, "sales") == 3
    # ... and an admin's replay delivers it to the same salesperson, the rotation unmoved
    with transaction(rt.sessions) as session:
        letter = session.execute(select(DeadLetter.id).where(DeadLetter.lead_id == refused)).scalar_one()
        replay(session, letter, actor="test", routing=rt.routing)
    assert process(rt, refused, owner="w") == "delivered"
    assert responsible(sandbox, rt, refused) == 503
    assert turns(rt, "sales") == 3

    after = ingest(rt, person(3))
    assert process(rt, after, owner="w") == "delivered"
    assert responsible(sandbox, rt, after) == 501


LEAST = [{"pool": "least", "mode": "least_open", "staff": [601, 602, 603], "open_days": 30}]


@pytest.mark.parametrize("rules", [LEAST], indirect=True)
def test_least_open_picks_whoever_holds_fewest_open_opportunities(rt: Runtime, sandbox: Any) -> None:
    ids = [ingest(rt, person(n)) for n in range(3)]
    assert [process(rt, i, owner="w") for i in ids] == ["delivered"] * 3
    assert [responsible(sandbox, rt, i) for i in ids] == [601, 602, 603]  # all even: in turn
    # 602's opportunity is past the open window: 602 now holds the fewest open ones
    with transaction(rt.sessions) as session:
        session.execute(
            update(Assignment)
            .where(Assignment.staff_id == 602)
            .values(assigned_at=utcnow() - timedelta(days=31))
        )
    nxt = ingest(rt, person(3))
    assert process(rt, nxt, owner="w") == "delivered"
    assert responsible(sandbox, rt, nxt) == 602  # round-robin would have said 601


FIXED = [
    {"mode": "fixed", "staff": [777]},
    {"mode": "round_robin", "staff": [801, 802], "location": "missionhub"},
]


@pytest.mark.parametrize("rules", [FIXED], indirect=True)
def test_fixed_assignment_and_the_most_specific_rule_wins(rt: Runtime, sandbox: Any) -> None:
    here = ingest(rt, person(1))  # the canonical channel's listing is at foundry: the fixed rule
    assert process(rt, here, owner="w") == "delivered"
    assert responsible(sandbox, rt, here) == 777
    with transaction(rt.sessions) as session:
        assert session.execute(select(AssignmentPool)).first() is None  # fixed turns nothing


def test_the_routing_file_names_what_assignment_refers_to() -> None:
    with pytest.raises(RoutingError) as err:
        routing_with(
            assignment=[
                {"staff": [1], "location": "atlantis"},
                {"mode": "fixed", "staff": [1, 2]},
                {"pool": "p", "staff": [1, 2]},
                {"pool": "p", "staff": [3]},
            ],
            notifications={"teams": {"nowhere": {"email": ["team@op.example"]}}},
        )
    with pytest.raises(RoutingError) as bad_link:
        routing_with(notifications={"opportunity_url": "https://dash.example/{opportunity}"})
    assert "only {id} and {account} may be filled in" in str(bad_link.value)
    text = str(err.value)
    assert "assignment[0].location: no location named 'atlantis'" in text
    assert "assignment[1].staff: fixed assignment takes exactly one staff id" in text
    assert "assignment[3].pool: 'p' is another rule's pool with other staff" in text
    assert "notifications.teams.nowhere: no location named 'nowhere'" in text


def test_the_light_check_names_what_notifications_lack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SALES_HOOK", raising=False)
    routing = routing_with(
        staff={501: {"name": "Ann", "email": "ann@operator.example"}},
        notifications={"enabled": True, "webhook": {"url_env": "SALES_HOOK"}},
    )
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(routing.model_dump(mode="json", exclude_none=True)))
    _, report = light_check(make_settings(config=path, smtp_host=None))
    assert report.problems == [
        "notifications.email: e-mails to staff need LEADRELAY_SMTP_HOST (or email: false)",
        "notifications.webhook.url_env: environment variable SALES_HOOK is not set",
    ]
    monkeypatch.setenv("SALES_HOOK", "https://hooks.example/sales")
    _, report = light_check(make_settings(config=path, smtp_host="smtp.operator.example"))
    assert report.problems == []
