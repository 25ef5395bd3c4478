"""The typed team config (config_service.TeamConfig): one set of defaults, the accessors the engine
reads, strict parsing whose only failure is the typed error, and secrets that never show."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config_service import (
    DEFAULT_CONFIG,
    ENGINE_DEFAULT_MODEL,
    EffectiveConfig,
    InvalidTeamConfig,
    LLMConfig,
    TeamConfig,
    max_concurrent_runs,
)
from incidentfox.contracts import SUBAGENTS


def _no_nones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_nones(v) for k, v in value.items() if v is not None}
    return value


def test_model_defaults_are_exactly_the_default_layer() -> None:
    # Every non-null default of the model is in DEFAULT_CONFIG and vice versa, with the same value.
    parsed = _no_nones(EffectiveConfig().model_dump(mode="python"))
    assert parsed == dict(DEFAULT_CONFIG)
    # …and the effective config of a team that sets nothing (defaults layer only) parses to it.
    assert TeamConfig(copy.deepcopy(dict(DEFAULT_CONFIG))).effective == EffectiveConfig()


def test_accessors_of_an_empty_config_are_the_defaults() -> None:
    cfg = TeamConfig({}, org_id="acme", team_id="payments")
    inv = DEFAULT_CONFIG["investigation"]
    assert (cfg.deadline_s, cfg.correlation_window_s) == (inv["deadline_s"], inv["correlation_window_s"])
    assert cfg.max_concurrent_runs == max_concurrent_runs({}) == DEFAULT_CONFIG["quotas"]["max_concurrent_runs"] == 5
    assert cfg.deployment_mode == "shared" and cfg.llm is None and cfg.planner_mode == "offline"
    assert cfg.slack_bot_token is None and cfg.slack_default_channel is None
    assert cfg.enabled_subagents == list(SUBAGENTS) and cfg.tool_switches == {} and cfg.integrations == {}
    assert cfg.agent("planner").max_turns == inv["max_turns"]
    assert (cfg.access.approvers, cfg.access.sandbox_users, cfg.access.responders) == ([], [], [])
    assert cfg.sandbox.ttl_s is None   # the platform's INCIDENTFOX_SANDBOX_TTL_S applies


def test_accessors_read_the_document() -> None:
    cfg = TeamConfig({
        "deployment": {"mode": "dedicated"}, "quotas": {"max_concurrent_runs": 2},
        "slack": {"default_channel": "C1"}, "integrations": {"slack": {"bot_token": "xoxb-1"}},
        "investigation": {"deadline_s": 30, "correlation_window_s": 0, "planner": "auto", "max_turns": 7},
        "llm": {"provider": "anthropic", "api_key": "sk-ant", "max_turns": 9},
        "subagents": {"logs": False},
        "agents": {"metrics": {"max_turns": 3, "model": "m2", "playbook": [{"tool": "prom", "args": {"q": 1}}]},
                   "cloud": {"enabled": False}},
        "tools": {"k8s": True, "aws": False},
        "access": {"approvers": ["U012AB3CD"], "responders": ["S0614TZR7"], "sandbox_users": ["W0123ABC"]},
    }, org_id="acme", team_id="pay")
    assert (cfg.deployment_mode, cfg.max_concurrent_runs, cfg.slack_default_channel) == ("dedicated", 2, "C1")
    assert cfg.slack_bot_token == "xoxb-1" and cfg.deadline_s == 30 and cfg.correlation_window_s == 0
    assert cfg.llm.model == ENGINE_DEFAULT_MODEL and cfg.llm.reveal_api_key() == "sk-ant"
    assert cfg.planner_mode == "llm"
    assert cfg.agent("planner").max_turns == 9                      # llm.max_turns over investigation's
    metrics = cfg.agent("metrics")
    assert (metrics.max_turns, metrics.model, metrics.playbook) == (3, "m2", [("prom", {"q": 1})])
    assert cfg.enabled_subagents == ["kubernetes", "metrics", "changes"]
    assert cfg.tool_switches == {"k8s": True, "aws": False}
    assert cfg.access.approvers == ["U012AB3CD"]
    assert TeamConfig({"llm": {"provider": "openai"}, "investigation": {"planner": "offline"}}).planner_mode == "offline"
    # The view can be re-wrapped (callers pass either a document or a TeamConfig).
    again = TeamConfig(cfg)
    assert again.effective is cfg.effective and (again.org_id, again.team_id) == ("acme", "pay")


def test_null_is_absent() -> None:
    cfg = TeamConfig({"investigation": {"deadline_s": None}, "quotas": None, "slack": {"default_channel": None}})
    assert cfg.deadline_s == DEFAULT_CONFIG["investigation"]["deadline_s"] and cfg.max_concurrent_runs == 5


@pytest.mark.parametrize("doc, path", [
    ({"quotas": {"max_concurrent_runs": "5"}}, "quotas.max_concurrent_runs"),    # no coercion
    ({"quotas": {"max_concurrent_runs": 0}}, "quotas.max_concurrent_runs"),
    ({"investigation": {"correlation_window_s": -1}}, "investigation.correlation_window_s"),
    ({"investigation": {"deadline_s": True}}, "investigation.deadline_s"),
    ({"investigation": {"deadline_s": float("nan")}}, "investigation.deadline_s"),
    ({"investigation": {"planner": "magic"}}, "investigation.planner"),
    ({"llm": {"provider": "bard"}}, "llm.provider"),
    ({"llm": "openai"}, "llm"),
    ({"agents": {"k8s": {}}}, "agents"),                                         # not in the roster
    ({"agents": {"logs": {"playbook": [{"args": {}}]}}}, "agents.logs.playbook.0.tool"),
    ({"subagents": {"kubernetes": "yes"}}, "subagents.kubernetes"),
    ({"access": {"approvers": ["bob"]}}, "access.approvers.0"),
    ({"access": {"responders": "U012AB3CD"}}, "access.responders"),
    ({"sandbox": {"mcp_servers": [{"command": ["sh"]}]}}, "sandbox.mcp_servers.0"),
    ({"integrations": {"slack": "xoxb"}}, "integrations.slack"),
])
def test_malformed_values_are_the_typed_error_naming_the_path(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidTeamConfig) as exc:
        TeamConfig(doc)
    assert exc.value.status == 422 and exc.value.code == "invalid_team_config"
    assert path in [e["path"] for e in exc.value.details["errors"]]


def test_errors_and_reprs_never_show_secrets() -> None:
    secret = "sk-live-VERY-SECRET-123"
    cfg = TeamConfig({"llm": {"provider": "openai", "api_key": secret},
                      "integrations": {"slack": {"bot_token": secret}}}, org_id="a", team_id="b")
    for text in (repr(cfg), str(cfg), repr(cfg.llm), str(cfg.llm), repr(cfg.effective), str(cfg.effective),
                 cfg.llm.model_dump_json()):
        assert secret not in text
    with pytest.raises(InvalidTeamConfig) as exc:
        TeamConfig({"llm": {"api_key": secret, "provider": secret}, "quotas": {"max_concurrent_runs": secret}})
    assert secret not in str(exc.value.details) and secret not in exc.value.message


def test_one_llm_model_for_engine_and_sandbox() -> None:
    from actors.sandbox.config import parse_llm_config

    section = {"provider": "anthropic", "model": "claude", "api_key": "sk-x", "max_tokens": 1000}
    sandbox = parse_llm_config(section)
    engine = TeamConfig({"llm": section}).llm
    assert type(sandbox) is type(engine) is LLMConfig and sandbox == engine


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                     max_leaves=20)
_keys = st.sampled_from([*DEFAULT_CONFIG, "locked_paths", "x"])
_doc = st.dictionaries(_keys, _json | st.dictionaries(
    st.sampled_from(["mode", "deadline_s", "correlation_window_s", "max_turns", "planner", "provider", "api_key",
                     "max_concurrent_runs", "approvers", "mcp_servers", "ttl_s", "slack", *SUBAGENTS, "y"]),
    _json, max_size=4), max_size=6)


@given(st.one_of(_doc, _json))
def test_hostile_documents_raise_only_the_typed_error(doc: Any) -> None:
    try:
        cfg = TeamConfig(doc)
    except InvalidTeamConfig as exc:
        assert exc.details["errors"] and all(set(e) == {"path", "message"} for e in exc.details["errors"])
        return
    # Whatever parses gives well-typed accessors.
    assert cfg.max_concurrent_runs >= 1 and cfg.deadline_s > 0 and cfg.correlation_window_s >= 0
    assert cfg.planner_mode in ("offline", "llm") and set(cfg.enabled_subagents) <= set(SUBAGENTS)
