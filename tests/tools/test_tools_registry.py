"""One declaration per tool: strict schemas, catalog, allow-list, and docs/tools.md from the same source."""

from __future__ import annotations

import copy
import inspect
import json
import re
from pathlib import Path

import jsonschema
import pytest
from agents.strict_schema import ensure_strict_json_schema
from typer.testing import CliRunner

from actors.tools.base import CATEGORIES, INTEGRATIONS, ToolSpec
from actors.tools.demo.handlers import HANDLERS
from actors.tools.docs import render_tools_markdown
from actors.tools.registry import TOOLS, catalog, tools_for
from cli.main import app

ROOT = Path(__file__).resolve().parents[2]
SPECS = list(TOOLS.values())


def _strict(schema: dict, where: str) -> None:
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "object" in kinds:
        assert schema.get("additionalProperties") is False, where
        assert set(schema.get("required", [])) == set(schema.get("properties", {})), where
        for name, prop in schema.get("properties", {}).items():
            assert prop.get("description"), f"{where}.{name} has no description"
            _strict(prop, f"{where}.{name}")
    if "array" in kinds:
        _strict(schema["items"], f"{where}[]")


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_each_tool_is_fully_declared(spec: ToolSpec) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]{2,63}", spec.name)
    assert len(spec.description) >= 40 and not spec.description.endswith(" ")
    assert spec.category in CATEGORIES and spec.integration in INTEGRATIONS
    assert 0 < spec.timeout_s <= 60 and 0 <= spec.retries <= 3
    assert inspect.iscoroutinefunction(spec.fn)
    jsonschema.Draft202012Validator.check_schema(spec.parameters)
    _strict(spec.parameters, spec.name)
    # The openai-agents SDK's own strict-mode pass leaves a strict schema unchanged.
    assert ensure_strict_json_schema(copy.deepcopy(spec.parameters)) == spec.parameters


def test_mutating_tools_are_the_change_making_ones() -> None:
    assert {s.name for s in SPECS if s.mutating} == {"kubernetes_restart_deployment", "kubernetes_scale_deployment",
                                                     "github_open_revert_pr",
                                                     "kubernetes_rollback_deployment"}


def test_every_tool_is_served_by_the_demo_world() -> None:
    # The knowledge tools read the team's own knowledge base, in demo teams too (the demo seeds runbooks).
    assert set(HANDLERS) == {name for name, spec in TOOLS.items() if spec.integration != "knowledge"}


def test_catalog_is_the_declarations_without_functions() -> None:
    entries = catalog()
    assert sorted(e["name"] for e in entries) == sorted(TOOLS)
    json.dumps(entries)
    for e in entries:
        spec = TOOLS[e["name"]]
        assert e == {"name": spec.name, "description": spec.description, "parameters": spec.parameters,
                     "category": spec.category, "integration": spec.integration, "mutating": spec.mutating,
                     "timeout_s": spec.timeout_s, "retries": spec.retries}


def test_docs_are_generated_from_the_declarations() -> None:
    text = render_tools_markdown()
    assert (ROOT / "docs" / "tools.md").read_text() == text, "run `incidentfox docs tools --out docs/tools.md`"
    for spec in SPECS:
        assert f"### {spec.name}\n\n{spec.description}\n" in text
        for name in spec.parameters["properties"]:
            assert f"| `{name}` |" in text


def test_docs_command_writes_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "tools.md"
    assert runner.invoke(app, ["docs", "tools", "--out", str(out)]).exit_code == 0
    assert out.read_text() == render_tools_markdown()
    assert runner.invoke(app, ["docs", "tools", "--out", str(out), "--check"]).exit_code == 0
    out.write_text("stale")
    assert runner.invoke(app, ["docs", "tools", "--out", str(out), "--check"]).exit_code == 1


def names(config: dict) -> set[str]:
    return {s.name for s in tools_for(config)}


def test_no_integrations_means_no_tools() -> None:
    assert names({}) == set() and names({"integrations": {}, "tools": {"*": True}}) == set()


def test_tools_follow_configured_integrations() -> None:
    assert names({"integrations": {"prometheus": {"url": "http://p"}}}) == {
        "prometheus_query", "prometheus_query_range", "prometheus_service_graph", "search_runbooks",
        "similar_incidents"}
    assert names({"integrations": {"prometheus": {"url": "http://p"}}, "knowledge": {"enabled": False}}) == {
        "prometheus_query", "prometheus_query_range", "prometheus_service_graph"}
    assert names({"integrations": {"prometheus": {"url": "http://p", "enabled": False}}}) == set()
    k8s = names({"integrations": {"kubernetes": {"host": "https://k"}}})
    assert "kubernetes_list_pods" in k8s and "kubernetes_restart_deployment" not in k8s


def test_demo_enables_every_read_only_tool() -> None:
    demo = names({"integrations": {"demo": {"scenario": "bad_deploy"}}})
    assert demo == {s.name for s in SPECS if not s.mutating}
    assert names({"integrations": {"demo": True}}) == demo


def test_allow_list() -> None:
    base = {"integrations": {"demo": True}}
    assert "loki_query_logs" not in names(base | {"tools": {"loki_query_logs": False}})
    assert names(base | {"tools": {"*": False, "prometheus_query": True}}) == {"prometheus_query"}
    assert "kubernetes_restart_deployment" in names(base | {"tools": {"kubernetes_restart_deployment": True}})
    assert "kubernetes_restart_deployment" not in names(base | {"tools": {"*": True}})
