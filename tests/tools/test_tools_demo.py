"""The demo world: scenarios, the same tool names served from it, evaluation bundles, and playbooks."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actors.tools.base import ToolContext, ToolError
from actors.tools.demo.scenarios import SCENARIOS
from actors.tools.demo.traces import trace_ids
from actors.tools.demo.world import EVAL_NOW, build_world, incident_bundles
from actors.tools.execute import execute, prepare_arguments
from actors.tools.playbooks import PLAYBOOKS, playbook
from actors.tools.registry import TOOLS
from config_service import MetricsSection
from incidentfox.contracts import SUBAGENTS
from incidentfox.evidence import EvidenceBundle

NOW = datetime(2025, 3, 14, 15, 0, 20, tzinfo=UTC)

# Smallest valid arguments per tool (all that is not listed is null).
MINIMAL: dict[str, dict[str, Any]] = {
    "kubernetes_get_pod_logs": {"namespace": "shop", "pod": "<first pod>"},
    "kubernetes_describe_pod": {"namespace": "shop", "pod": "<first pod>"},
    "kubernetes_restart_deployment": {"namespace": "shop", "deployment": "checkout"},
    "kubernetes_scale_deployment": {"namespace": "shop", "deployment": "checkout", "replicas": 4},
    "kubernetes_rollback_deployment": {"namespace": "shop", "deployment": "checkout"},
    "github_open_revert_pr": {"repo": "acme/shop", "sha": "0123456789abcdef0123456789abcdef01234567",
                              "action_id": "act_demo"},
    "prometheus_query": {"query": 'sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))'},
    "prometheus_query_range": {"query": "histogram_quantile(0.99, http_request_duration_seconds_bucket)"},
    "loki_query_logs": {"query": '{service="checkout"} |= "ERROR"'},
    "aws_cloudwatch_metric": {"namespace": "AWS/RDS", "metric_name": "DatabaseConnections",
                              "dimensions": [{"name": "DBInstanceIdentifier", "value": "postgres"}]},
    "aws_cloudwatch_logs": {"log_group": "/shop/checkout"},
    "slack_thread_history": {"channel": "C1", "thread_ts": "1.2"},
    "datadog_query_metrics": {"query": "avg:trace.http.request.errors{service:checkout}"},
    "datadog_search_logs": {"query": "service:checkout status:error"},
    "coralogix_query_logs": {"query": "source logs | filter $l.subsystemname == 'checkout'"},
    "jaeger_search_traces": {"service": "checkout"},
    "datadog_search_traces": {"service": "checkout"},
    "tempo_get_trace": {"trace_id": "<first trace>"},
    "jaeger_get_trace": {"trace_id": "<first trace>"},
    "xray_get_trace": {"trace_id": "<first xray trace>"},
}


def demo_ctx(scenario: str | None = None, clock: Any = None, **extra: Any) -> ToolContext:
    config = {"latency_ms": 0, **extra}
    if scenario:
        config["scenario"] = scenario
    return ToolContext(integrations={"demo": config}, clock=clock or (lambda: NOW))


def minimal(tool: str) -> dict[str, Any]:
    args = dict(MINIMAL.get(tool, {}))
    if args.get("pod") == "<first pod>":
        args["pod"] = build_world("bad_deploy", now=NOW.replace(second=0)).pods[0].name
    if args.get("trace_id", "").startswith("<first"):
        world = build_world("bad_deploy", now=NOW.replace(second=0))
        args["trace_id"] = trace_ids(world, xray="xray" in args["trace_id"])[0]
    return args


# The knowledge tools read the team's own knowledge base, in demo teams too (tests/knowledge_use).
@pytest.mark.parametrize("tool", sorted(t for t, spec in TOOLS.items() if spec.integration != "knowledge"))
async def test_every_tool_answers_from_the_demo_world(tool: str) -> None:
    result = await execute(TOOLS[tool], minimal(tool), demo_ctx(), approved=True)
    assert result.ok, f"{tool}: {result.error} {result.message}"
    assert result.summary and result.result_size > 0


async def test_mutating_demo_tools_still_need_approval() -> None:
    args = minimal("kubernetes_restart_deployment")
    refused = await execute(TOOLS["kubernetes_restart_deployment"], args, demo_ctx())
    assert refused.error == "approval_required"
    done = await execute(TOOLS["kubernetes_restart_deployment"], args, demo_ctx(), approved=True)
    assert done.ok and done.data["simulated"] is True


@pytest.mark.parametrize("tool, args, reason", [
    ("kubernetes_get_pod_logs", {"namespace": "shop", "pod": "ghost-123"}, "not_found"),
    ("kubernetes_rollout_history", {"namespace": "shop", "deployment": "ghost"}, "not_found"),
    ("github_deployments", {"repo": "acme/ghost"}, "not_found"),
    ("aws_rds_instances", {"identifier": "ghost"}, "not_found"),
    ("aws_cloudwatch_logs", {"log_group": "/nope"}, "not_found"),
    ("aws_ecs_services", {"cluster": "ghost"}, "not_found"),
])
async def test_demo_error_paths(tool: str, args: dict, reason: str) -> None:
    result = await execute(TOOLS[tool], args, demo_ctx())
    assert result.error == reason


async def test_unknown_scenario_is_not_configured() -> None:
    result = await execute(TOOLS["kubernetes_list_pods"], {}, demo_ctx("volcano"))
    assert result.error == "not_configured" and "volcano" in result.message


@pytest.mark.parametrize("scenario, reason, owner", [
    ("oom_kill", "OOMKilled", "deployment/cart"),
    ("image_pull", "ImagePullBackOff", "deployment/payments"),
])
async def test_scenario_is_selected_by_the_integration_config(scenario: str, reason: str, owner: str) -> None:
    result = await execute(TOOLS["kubernetes_list_pods"], {}, demo_ctx(scenario))
    troubled = {o.owner for o in result.evidence.objects if reason in o.reasons}
    assert troubled == {owner}
    default = await execute(TOOLS["kubernetes_list_pods"], {}, demo_ctx())
    assert not any(o.reasons for o in default.evidence.objects)


async def test_bad_deploy_signals_through_live_tool_names() -> None:
    c = demo_ctx()
    rollouts = await execute(TOOLS["kubernetes_rollout_history"], {"deployment": "checkout"}, c)
    newest = rollouts.evidence.changes[0]
    assert "v2.14.0" in newest.description and newest.entity == "shop/deployment/checkout"
    assert timedelta(minutes=10) < NOW - newest.at < timedelta(minutes=20)
    errors = await execute(TOOLS["prometheus_query_range"], {
        "query": 'sum by (service) (rate(http_requests_total{service="checkout",code=~"5.."}[5m]))',
        "baseline_offset_hours": 24, "since_minutes": 30}, c)
    current = next(s for s in errors.evidence.metrics if not s.baseline)
    baseline = next(s for s in errors.evidence.metrics if s.baseline)
    assert current.entity == "checkout" and current.values[-1] > 20 * max(baseline.values)
    logs = await execute(TOOLS["loki_query_logs"], {"query": '{service="checkout"} |~ "(?i)pool"'}, c)
    assert logs.evidence.logs and all(ln.entity == "checkout" for ln in logs.evidence.logs)
    assert any("pool exhausted" in ln.text for ln in logs.evidence.logs)


async def test_one_world_per_minute_for_a_run() -> None:
    a = await execute(TOOLS["kubernetes_list_pods"], {}, demo_ctx(clock=lambda: NOW))
    b = await execute(TOOLS["kubernetes_list_pods"], {}, demo_ctx(clock=lambda: NOW + timedelta(seconds=30)))
    assert a.evidence == b.evidence
    pinned = {"anchor": "2025-03-01T12:00:00Z"}
    c = await execute(TOOLS["kubernetes_rollout_history"], {"deployment": "checkout"}, demo_ctx(**pinned))
    assert c.evidence.changes[0].at == datetime(2025, 3, 1, 11, 46, tzinfo=UTC)


async def test_simulated_latency_is_configurable_and_cancellable() -> None:
    spec = TOOLS["kubernetes_list_nodes"]
    started = time.monotonic()
    result = await execute(spec, {}, demo_ctx(latency_ms=[40, 60]))
    assert result.ok and time.monotonic() - started >= 0.04
    task = asyncio.create_task(execute(spec, {}, demo_ctx(latency_ms=60_000)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_worlds_are_deterministic() -> None:
    build_world.cache_clear()
    one = build_world("bad_deploy", now=EVAL_NOW, seed=3)
    build_world.cache_clear()
    assert build_world("bad_deploy", now=EVAL_NOW, seed=3) == one
    other = build_world("bad_deploy", now=EVAL_NOW, seed=4)
    assert other.series != one.series and other.pods == one.pods
    with pytest.raises(KeyError):
        build_world("volcano", now=EVAL_NOW)


def _recent_changes(bundle: EvidenceBundle, minutes: float) -> set[str]:
    alert = bundle.alert.started_at
    return {c.entity.split("/")[-1] for c in bundle.changes
            if c.kind == "deploy" and c.at and timedelta(0) <= alert - c.at <= timedelta(minutes=minutes)}


def _anomalous(bundle: EvidenceBundle, metric: str, factor: float) -> set[str]:
    base = {s.entity: max(s.values) for s in bundle.metrics if s.baseline and s.metric == metric and s.values}
    return {s.entity for s in bundle.metrics if not s.baseline and s.metric == metric and s.values
            and s.values[-1] > factor * max(base.get(s.entity, 0.0), 1e-3)}


def test_incident_bundles_cover_each_kind() -> None:
    cases = {name: (bundle, expected) for name, bundle, expected in incident_bundles()}
    assert {name: expected for name, (_, expected) in cases.items()} == {
        "demo/bad_deploy": "checkout", "demo/oom_kill": "cart", "demo/image_pull": "payments",
        "demo/dependency_failure": "postgres"}
    for bundle, _ in cases.values():
        assert bundle.alert.title and bundle.alert.started_at and len(bundle.topology) == 5
        assert bundle.metrics and bundle.objects and bundle.changes
        pods = {o.name for o in bundle.objects if o.kind == "Pod"}
        assert all(e.name in pods for e in bundle.events if e.kind == "Pod")   # events name real pods

    deploy, _ = cases["demo/bad_deploy"]
    assert _recent_changes(deploy, 30) == {"checkout"}
    assert "checkout" in _anomalous(deploy, "error_rate", 10) and "checkout" in _anomalous(deploy, "latency_p99", 5)
    assert "postgres" not in _anomalous(deploy, "latency_p99", 2)
    assert any(ln.entity == "checkout" and "pool" in ln.text.lower() and ln.level == "error" for ln in deploy.logs)
    assert not any(o.reasons for o in deploy.objects if o.kind == "Pod")

    oom, _ = cases["demo/oom_kill"]
    assert {o.owner for o in oom.objects if "OOMKilled" in o.reasons} == {"deployment/cart"}
    assert any(e.reason == "BackOff" for e in oom.events) and not _recent_changes(oom, 60)

    pull, _ = cases["demo/image_pull"]
    assert {o.owner for o in pull.objects if "ImagePullBackOff" in o.reasons} == {"deployment/payments"}
    assert _recent_changes(pull, 30) == {"payments"}

    dep, _ = cases["demo/dependency_failure"]
    assert [(o.name, o.status) for o in dep.objects if o.kind == "DBInstance"] == [("postgres", "storage-full")]
    assert {"checkout", "payments"} <= _anomalous(dep, "error_rate", 10)
    assert "cart" in _recent_changes(dep, 60)          # a red herring: cart shows no anomaly
    assert "cart" not in _anomalous(dep, "error_rate", 3)
    assert any(ln.entity == "postgres" and "No space left" in ln.text for ln in dep.logs)


def test_scenarios_are_self_consistent() -> None:
    for sc in SCENARIOS.values():
        assert sc.alert_min < sc.onset_min
        assert all(d.minutes_ago > 0 for d in sc.deploys)


@pytest.mark.parametrize("subagent", SUBAGENTS)
def test_playbook_arguments_are_valid(subagent: str) -> None:
    steps = playbook(subagent, services=["checkout", "frontend"], window=timedelta(minutes=45))
    assert steps
    for tool, args in steps:
        prepare_arguments(TOOLS[tool], args)      # raises ToolError if a template drifts from its schema
        if "since_minutes" in args:
            assert args["since_minutes"] >= 45
    for slot in PLAYBOOKS[subagent]:
        for tool, build in slot:
            for preset in ("default", "opentelemetry", "istio", "ingress_nginx"):
                schema = MetricsSection(requests=preset, service_graph="istio",
                                        latency_statistics=["p99", "average", "p99.9"]).schema()
                args = build(["checkout"], 30, schema)
                for one in args if isinstance(args, list) else [args]:   # a list: one call per statistic
                    prepare_arguments(TOOLS[tool], one)


def test_playbook_picks_available_alternatives() -> None:
    primary = playbook("metrics", services=[], window=60)
    assert [t for t, _ in primary] == ["prometheus_query_range"] * 4 + ["prometheus_service_graph", "rabbitmq_cluster_status"]
    assert [a["metric"] for t, a in primary if t == "prometheus_query_range"] == ["error_rate", "latency_p99", "memory", "cpu"]
    datadog = playbook("metrics", services=[], window=60, available={"datadog_query_metrics"})
    assert [t for t, _ in datadog] == ["datadog_query_metrics"] * 2
    assert playbook("logs", services=[], window=60, available=set()) == []
    focused = playbook("logs", services=["checkout"], window=60)
    assert focused[1] == ("loki_query_logs", {"query": '{service=~"checkout"}', "since_minutes": 60, "limit": 100})
    with pytest.raises(KeyError):
        playbook("astrology", services=[], window=60)


def test_playbook_window_forms_and_hostile_service_names() -> None:
    now = datetime.now(UTC)
    steps = playbook("logs", services=['x"} |= "', "checkout"], window=(now - timedelta(minutes=20), now))
    assert steps[1][1]["query"] == '{service=~"checkout"}' and steps[0][1]["since_minutes"] == 20
    assert playbook("changes", window=None)[1][1]["since_minutes"] == 180


def test_prepare_arguments_rejects_drifted_templates() -> None:
    with pytest.raises(ToolError):
        prepare_arguments(TOOLS["loki_query_logs"], {"query": "x", "since": 5})
