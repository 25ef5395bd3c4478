"""One configuration reference (issue 15): the team-config JSON Schema served by the config service,
and docs/configuration.md generated from it and from the settings object."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.config_reference import render_configuration_markdown
from cli.main import app
from config_service import DEFAULT_CONFIG, EffectiveConfig, team_config_schema
from config_service.core.validation import ROUTING_CLAIM_KEYS
from config_service.testing import config_harness
from incidentfox.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]


def _schema_defaults(schema: dict, node: dict) -> dict:
    """The document the schema's defaults describe (sections filled from their own keys' defaults)."""
    out = {}
    for key, prop in node["properties"].items():
        ref = prop.get("$ref")
        if ref:
            out[key] = _schema_defaults(schema, schema["$defs"][ref.rsplit("/", 1)[-1]])
        elif prop.get("default") is not None:
            out[key] = prop["default"]
    return out


def test_the_schema_has_every_default_of_the_default_layer() -> None:
    schema = team_config_schema()
    assert _schema_defaults(schema, schema) == dict(DEFAULT_CONFIG)
    assert set(schema["properties"]) == set(EffectiveConfig.model_fields)


def test_every_team_config_key_is_described() -> None:
    schema = team_config_schema()
    nodes = [("", schema), *[(f"{name}.", d) for name, d in schema["$defs"].items()]]
    missing = [prefix + key for prefix, node in nodes for key, prop in node.get("properties", {}).items()
               if not prop.get("description")]
    assert not missing, missing
    routing = schema["properties"]["routing"]["description"]
    assert all(key in routing for key in ROUTING_CLAIM_KEYS), routing


def test_committed_configuration_doc_is_generated() -> None:
    text = render_configuration_markdown()
    assert (ROOT / "docs" / "configuration.md").read_text() == text, \
        "run `incidentfox docs config --out docs/configuration.md` (make docs)"
    for name in Settings.model_fields:
        assert f"| `{env_name(name)}` |" in text
    for key in ("investigation.deadline_s", "access.approvers", "agents.<name>.playbook[].tool", "llm.api_key"):
        assert f"| `{key}` |" in text


def test_docs_config_command_writes_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "configuration.md"
    runner = CliRunner()
    stale = runner.invoke(app, ["docs", "config", "--out", str(out), "--check"])
    assert stale.exit_code == 1 and "out of date" in stale.output
    assert runner.invoke(app, ["docs", "config", "--out", str(out)]).exit_code == 0
    assert out.read_text() == render_configuration_markdown()
    assert runner.invoke(app, ["docs", "config", "--out", str(out), "--check"]).exit_code == 0


@pytest.fixture
async def cs(db_url, tmp_path):
    async with config_harness(db_url=db_url, home=tmp_path) as harness:
        yield harness


async def test_schema_endpoint_serves_the_model_to_any_valid_token(cs) -> None:
    r = await cs.client.get("/api/v1/config/schema")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_token"
    await cs.create_org("acme")
    await cs.create_node("acme", "payments")
    for token in (None, await cs.org_token("acme"), await cs.team_token("acme", "payments")):
        r = await cs.call("GET", "/api/v1/config/schema", token=token)
        assert r.status_code == 200, r.text
        assert r.json() == team_config_schema()
    body = r.json()
    assert body["$defs"]["QuotasSection"]["properties"]["max_concurrent_runs"]["default"] == 5
    api_key = body["$defs"]["LLMConfig"]["properties"]["api_key"]["anyOf"]
    assert any(s.get("format") == "password" and s.get("writeOnly") for s in api_key), api_key


async def test_a_write_the_schema_refuses_is_422_naming_the_key(cs) -> None:
    await cs.create_org("acme")
    await cs.create_node("acme", "payments")
    for bad, path in (({"sandbox": {"max_open_sessions": 0}}, "sandbox.max_open_sessions"),
                      ({"access": {"api_approvals": "yes"}}, "access.api_approvals"),
                      ({"llm": {"max_tokens": 10**6}}, "llm.max_tokens")):
        r = await cs.patch("acme", "payments", bad)
        assert r.status_code == 422, (bad, r.text)
        error = r.json()["error"]
        assert error["code"] == "invalid_config" and path in [e["path"] for e in error["details"]["errors"]]
