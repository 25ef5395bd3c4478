"""``kubernetes_describe_pod`` on the official client against a local server speaking the core API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from actors.ranking.k8s_state import k8s_findings
from actors.tools.base import ToolContext, ToolResult
from actors.tools.demo.backend import answer
from actors.tools.demo.world import build_world
from actors.tools.execute import execute
from actors.tools.registry import TOOLS
from actors.tools.replay import ReplayStore
from tests.kube_api_kit import kube_ctx
from tests.tls_certs import local_pki
from tests.tools_fakes import FakeHTTP

NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
POD_PATH = "/api/v1/namespaces/billing/pods/invoicer-5b7d9c8f6-q2wxz"

POD = {
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {"name": "invoicer-5b7d9c8f6-q2wxz", "namespace": "billing", "labels": {"pod-template-hash": "5b7d9c8f6"},
                 "ownerReferences": [{"kind": "ReplicaSet", "name": "invoicer-5b7d9c8f6", "apiVersion": "apps/v1",
                                      "uid": "u1"}]},
    "spec": {"nodeName": "node-a",
             "initContainers": [{"name": "migrate", "image": "reg/invoicer:7", "command": ["./migrate"]}],
             "containers": [{"name": "app", "image": "reg/invoicer:7", "command": ["java"], "args": ["-jar", "app.jar"],
                             "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                           "limits": {"memory": "512Mi"}}}]},
    "status": {"phase": "Running", "qosClass": "Burstable", "startTime": "2025-03-14T14:00:00Z",
               "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                               "message": "containers with unready status: [app]"}],
               "initContainerStatuses": [{"name": "migrate", "ready": True, "restartCount": 0, "image": "reg/invoicer:7",
                                          "imageID": "", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
               "containerStatuses": [{"name": "app", "ready": False, "restartCount": 5, "image": "reg/invoicer:7",
                                      "imageID": "",
                                      "state": {"waiting": {"reason": "CrashLoopBackOff",
                                                            "message": "back-off 2m40s restarting failed container"}},
                                      "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                                   "finishedAt": "2025-03-14T14:57:00Z"}}}]},
}
EVENTS = {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [
    {"metadata": {"name": "e1", "namespace": "billing"}, "type": "Warning", "reason": "BackOff", "count": 9,
     "message": "Back-off restarting failed container app in pod invoicer-5b7d9c8f6-q2wxz_billing(u1)",
     "lastTimestamp": "2025-03-14T14:58:00Z",
     "involvedObject": {"kind": "Pod", "name": "invoicer-5b7d9c8f6-q2wxz", "namespace": "billing"}},
    {"metadata": {"name": "e0", "namespace": "billing"}, "type": "Normal", "reason": "Scheduled", "count": 1,
     "message": "Successfully assigned billing/invoicer-5b7d9c8f6-q2wxz to node-a",
     "lastTimestamp": "2025-03-13T09:00:00Z",
     "involvedObject": {"kind": "Pod", "name": "invoicer-5b7d9c8f6-q2wxz", "namespace": "billing"}},
]}


@pytest.fixture
async def kube() -> AsyncIterator[FakeHTTP]:
    fake = FakeHTTP()
    await fake.start(ssl_context=local_pki().server_context())
    fake.route("GET", POD_PATH, (200, POD))
    fake.route("GET", "/api/v1/namespaces/billing/events", (200, EVENTS))
    yield fake
    await fake.close()



async def run(args: dict[str, Any], c: ToolContext) -> ToolResult:
    return await execute(TOOLS["kubernetes_describe_pod"], args, c, backoff_s=0.001)


ARGS = {"namespace": "billing", "pod": "invoicer-5b7d9c8f6-q2wxz", "since_minutes": 120}


async def test_describe_returns_limits_last_state_restarts_conditions_and_recent_events(kube: FakeHTTP) -> None:
    result = await run(ARGS, kube_ctx(kube))
    assert result.ok, result.message
    migrate, app = result.data["containers"]
    assert migrate["init"] and migrate["state"] == "Terminated"
    assert app["limits"] == {"memory": "512Mi"} and app["requests"] == {"cpu": "250m", "memory": "256Mi"}
    assert (app["reason"], app["last_state"], app["last_reason"], app["exit_code"], app["restarts"]) == (
        "CrashLoopBackOff", "Terminated", "OOMKilled", "137", 5)
    assert app["command"] == ["java", "-jar", "app.jar"]
    assert result.data["conditions"][0]["reason"] == "ContainersNotReady"
    assert [e["reason"] for e in result.data["events"]] == ["BackOff"]         # Scheduled is outside the window
    assert kube.calls("/api/v1/namespaces/billing/events")[0].arg("fieldSelector") == \
        "involvedObject.name=invoicer-5b7d9c8f6-q2wxz"
    assert "OOMKilled (exit 137)" in result.summary and "memory=512Mi" in result.summary
    (pod,) = result.evidence.objects
    assert pod.owner == "deployment/invoicer" and "OOMKilled" in pod.reasons


async def test_the_ranker_quotes_the_limit_the_oom_kill_hit(kube: FakeHTTP) -> None:
    result = await run(ARGS, kube_ctx(kube))
    oom = next(f for f in k8s_findings(result.evidence) if f.kind == "oom_killed")
    assert oom.details["memory_limit"] == "512Mi" and "exit code 137" in oom.evidence[0].quote


async def test_a_missing_pod_and_a_denial_are_typed_errors(kube: FakeHTTP) -> None:
    kube.route("GET", POD_PATH, (404, {"kind": "Status", "code": 404, "message": "pods not found"}))
    assert (await run(ARGS, kube_ctx(kube))).error == "not_found"
    kube.route("GET", POD_PATH, (403, {"kind": "Status", "code": 403, "message": "pods is forbidden"}))
    assert (await run(ARGS, kube_ctx(kube))).error == "forbidden"


def test_read_only_declared_once_with_demo_and_replay_backends() -> None:
    spec = TOOLS["kubernetes_describe_pod"]
    assert not spec.mutating and spec.integration == "kubernetes" and spec.timeout_s > 0
    world = build_world()
    pod = world.pods[0]
    demo = answer("kubernetes_describe_pod", {"namespace": pod.namespace, "pod": pod.name, "since_minutes": None}, world)
    assert demo.ok and demo.evidence.objects[0].name == pod.name
    store = ReplayStore.from_records([{"tool": "kubernetes_describe_pod", "match": {"pod": "x-1"},
                                       "result": {"data": {"name": "x-1"}, "summary": "pod x-1"}}])
    assert store.answer("kubernetes_describe_pod", {"namespace": "a", "pod": "x-1", "since_minutes": None}).data == {
        "name": "x-1"}
