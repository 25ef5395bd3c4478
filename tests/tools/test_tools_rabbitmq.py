"""``rabbitmq_cluster_status`` against a local server speaking the management API's ``/api/nodes``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from actors.tools.base import ToolContext, ToolResult
from actors.tools.demo.backend import answer
from actors.tools.demo.world import build_world
from actors.tools.execute import execute
from actors.tools.playbooks import playbook
from actors.tools.rabbitmq import node_entity
from actors.tools.registry import TOOLS
from tests.tools_fakes import FakeHTTP

NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
HOST = "{}.mq-headless.queues.svc.cluster.local"


def node(i: int, *, running: bool = True, partitions: tuple[int, ...] = (), mem_alarm: bool = False) -> dict[str, Any]:
    return {"name": f"rabbit@{HOST.format(f'mq-{i}')}", "type": "disc", "running": running,
            "partitions": [f"rabbit@{HOST.format(f'mq-{p}')}" for p in partitions], "mem_alarm": mem_alarm,
            "disk_free_alarm": False, "mem_used": 1, "uptime": 10}


def ctx(http: FakeHTTP) -> ToolContext:
    return ToolContext(integrations={"rabbitmq": {"url": http.url, "username": "monitor", "password": "mq-pass-123"}},
                       clock=lambda: NOW)


async def run(c: ToolContext) -> ToolResult:
    return await execute(TOOLS["rabbitmq_cluster_status"], {}, c, backoff_s=0.001)


async def test_a_split_cluster_names_the_pods_on_each_side(http: FakeHTTP) -> None:
    http.route("GET", "/api/nodes", (200, [node(0, running=False, partitions=()), node(1),
                                           node(2, partitions=(0,), mem_alarm=True)]))
    result = await run(ctx(http))
    assert result.ok, result.message
    req = http.calls("/api/nodes")[0]
    assert req.headers["Authorization"].startswith("Basic ") and "mq-pass-123" not in result.model_dump_json()
    events = {(e.namespace, e.kind, e.name, e.reason) for e in result.evidence.events}
    assert events == {("queues", "pod", "mq-0", "NodeDown"), ("queues", "pod", "mq-2", "NetworkPartition"),
                      ("queues", "pod", "mq-2", "MemoryAlarm")}
    partition = next(e for e in result.evidence.events if e.reason == "NetworkPartition")
    assert "cannot reach mq-0" in partition.message and partition.type == "Warning"
    assert [row["running"] for row in result.data] == [False, True, True]
    assert result.summary == "3 RabbitMQ nodes, 2 with problems: mq-0 (NodeDown); mq-2 (NetworkPartition, MemoryAlarm)"


async def test_a_healthy_cluster_raises_nothing_and_a_bad_body_is_typed(http: FakeHTTP) -> None:
    http.route("GET", "/api/nodes", (200, [node(0), node(1)]), (200, {"error": "not a list"}))
    healthy = await run(ctx(http))
    assert healthy.ok and healthy.evidence.events == [] and "0 with problems" in healthy.summary
    assert (await run(ctx(http))).error == "upstream_error"


async def test_unconfigured_and_refused(http: FakeHTTP) -> None:
    missing = await run(ToolContext(integrations={"rabbitmq": {"enabled": True}}, clock=lambda: NOW))
    assert missing.error == "not_configured"
    http.route("GET", "/api/nodes", (401, {"error": "not_authorised"}))
    assert not (await run(ctx(http))).ok


def test_node_names_map_to_the_pods_that_run_them() -> None:
    assert node_entity("rabbit@mq-1.mq-headless.queues.svc.cluster.local") == ("queues", "pod", "mq-1")
    assert node_entity("rabbit@broker-a.internal.example.com") == ("", "", "broker-a")
    assert node_entity("rabbit@localhost") == ("", "", "localhost")


def test_the_playbook_asks_for_broker_health_only_where_rabbitmq_is_configured() -> None:
    assert ("rabbitmq_cluster_status", {}) in playbook("metrics", window=60, available={"rabbitmq_cluster_status"})
    assert "rabbitmq_cluster_status" not in [t for t, _ in playbook("metrics", window=60,
                                                                     available={"prometheus_query_range"})]
    demo = answer("rabbitmq_cluster_status", {}, build_world())
    assert demo.ok and demo.data == [] and demo.summary.startswith("0 RabbitMQ nodes")
