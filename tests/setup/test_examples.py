"""routing.example.yaml and .env.example ship with the code and cannot drift from it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from leadrelay.cli import app, setup  # noqa: F401  (registers the commands)
from leadrelay.routing import load_routing, routing_json_schema
from leadrelay.settings import SECRET_FILES, Settings
from tests.conftest import REPO

EXAMPLE = REPO / "routing.example.yaml"
ENV_EXAMPLE = REPO / ".env.example"
EXAMPLE_ENV = {
    "NEXUDUS_PASSWORD": "x",
    "HUBBLEHQ_WEBHOOK_SECRET": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
    "CANONICAL_WEBHOOK_SECRET": "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
    "LEADS_IMAP_PASSWORD": "x",
}


def env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", None)
    return str(choices[0]) if choices else f"LEADRELAY_{field.upper()}"


def rendered_default(field: str) -> str:
    value = Settings.model_fields[field].default
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(str(part) for part in value)
    return str(value)


def env_example() -> str:
    """The whole .env.example, from the settings' fields, defaults and descriptions."""
    twins = {file_field for file_field, _ in SECRET_FILES.values()}
    lines = [
        "# Every leadrelay setting with its default (generated from leadrelay/settings.py;",
        "# tests/setup/test_examples.py keeps it in step). Uncomment what you change.",
        "# Secrets may instead be read from a file: the *_FILE twin of the variable.",
    ]
    for field, info in Settings.model_fields.items():
        if field in twins:
            continue
        lines.append("")
        if info.description:
            lines.append(f"# {info.description}")
        lines.append(f"# {env_name(field)}={rendered_default(field)}")
    return "\n".join(lines) + "\n"


def test_the_env_example_lists_every_setting_with_its_default() -> None:
    assert ENV_EXAMPLE.read_text() == env_example(), "regenerate: python -m tests.setup.test_examples"
    listed = dict(re.findall(r"^# ([A-Z_]+)=(.*)$", ENV_EXAMPLE.read_text(), flags=re.M))
    assert listed["LEADRELAY_CONFIG"] == ""
    assert listed["NEXUDUS_BASE_URL"] == "https://spaces.nexudus.com"
    assert listed["LEADRELAY_ALLOW_DEMO_ROUTING"] == "false"


def test_the_routing_example_loads_with_its_variables_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    routing = load_routing(EXAMPLE)
    assert routing.locations["london"].board_column_id == 2001
    assert routing.channels["hubblehq"].webhook is not None
    assert len(routing.channels["hubblehq"].webhook.keys("channels.hubblehq.webhook")) == 1
    assert routing.inboxes["leads"].resolved_password("inboxes.leads") is not None
    assert "whsec_" not in EXAMPLE.read_text()  # no secret values in the file


def test_the_json_schema_validates_the_example_and_refuses_mistakes() -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    result = CliRunner().invoke(app, ["schema", "routing"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema == routing_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"] == "leadrelay routing file"
    validator = jsonschema_rs.validator_for(schema)
    example = yaml.safe_load(EXAMPLE.read_text())
    assert validator.is_valid(example), list(validator.iter_errors(example))[:3]
    wrong = {**example, "chanels": {}}  # a typo in a key
    assert not validator.is_valid(wrong)
    wrong = {**example, "locations": {"x": {**example["locations"]["london"], "business_id": "one"}}}
    assert not validator.is_valid(wrong)


def test_the_configuration_page_names_the_modeline() -> None:
    page = (REPO / "docs" / "configuration.md").read_text()
    assert "yaml-language-server: $schema=" in page
    assert "leadrelay schema routing" in page


def test_the_configuration_page_lists_every_channel_init_offers() -> None:
    from leadrelay.cli.starter import CHANNEL_CHOICES

    page = (REPO / "docs" / "configuration.md").read_text()
    assert len(CHANNEL_CHOICES) == 11  # LeadSource 17 HubbleHq … 26 Valve, and canonical
    for name in CHANNEL_CHOICES:
        assert f"`{name}`" in page, name


if __name__ == "__main__":
    Path(ENV_EXAMPLE).write_text(env_example())
