"""Kubernetes tools on the official client against a local server speaking the API paths they use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from actors.tools.base import ToolContext, ToolResult
from actors.tools.execute import execute
from actors.tools.registry import TOOLS
from tests.tls_certs import local_pki
from tests.tools_fakes import FakeHTTP

NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
TOKEN = "k8s-token-abcdef"


def meta(name: str, ns: str | None = "shop", **extra: Any) -> dict[str, Any]:
    m = {"name": name, "uid": f"uid-{name}", "creationTimestamp": "2025-03-14T14:46:00Z", **extra}
    if ns:
        m["namespace"] = ns
    return m


def container_status(name: str, *, ready: bool, restarts: int = 0, state: dict | None = None,
                     last: dict | None = None) -> dict[str, Any]:
    return {"name": name, "image": f"reg/{name}:1", "imageID": "", "ready": ready, "restartCount": restarts,
            "state": state or {"running": {"startedAt": "2025-03-14T14:47:00Z"}}, "lastState": last or {}}


def pod(name: str, owner_rs: str, statuses: list[dict], phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": meta(name, labels={"app": owner_rs.split("-")[0], "pod-template-hash": owner_rs.split("-")[1]},
                         ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner_rs,
                                           "uid": "rs-uid", "controller": True}]),
        "spec": {"containers": [{"name": s["name"], "image": s["image"]} for s in statuses], "nodeName": "node-1"},
        "status": {"phase": phase, "containerStatuses": statuses, "startTime": "2025-03-14T14:47:00Z"},
    }


PODS = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [
    pod("cart-5d8f9-abcde", "cart-5d8f9", [container_status(
        "cart", ready=False, restarts=7,
        state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s restarting failed container"}},
        last={"terminated": {"reason": "OOMKilled", "exitCode": 137}})]),
    pod("payments-77aa1-xyz12", "payments-77aa1", [container_status(
        "payments", ready=False, state={"waiting": {"reason": "ImagePullBackOff",
                                                    "message": "Back-off pulling image reg/payments:v3.2.1-rc"}})],
        phase="Pending"),
    pod("checkout-6c7b8-q1w2e", "checkout-6c7b8", [container_status("checkout", ready=True)]),
]}
PODS["items"][2]["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "checkout-data"}},
                                       {"name": "cfg", "configMap": {"name": "checkout"}}]

EVENTS = {"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [
    {"metadata": meta("cart.1"), "involvedObject": {"kind": "Pod", "name": "cart-5d8f9-abcde", "namespace": "shop"},
     "reason": "BackOff", "message": "Back-off restarting failed container", "type": "Warning", "count": 21,
     "lastTimestamp": "2025-03-14T14:56:00Z"},
    {"metadata": meta("old.1"), "involvedObject": {"kind": "Pod", "name": "cart-old", "namespace": "shop"},
     "reason": "Killing", "message": "ancient", "type": "Normal", "count": 1,
     "lastTimestamp": "2025-03-13T09:00:00Z"},
]}


def deployment(name: str, ready: int, replicas: int, image: str, available: bool, revision: str) -> dict:
    conditions = [{"type": "Available", "status": "True" if available else "False",
                   "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                   "message": "" if available else "Deployment does not have minimum availability."}]
    if not available:
        conditions.append({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                           "message": f"ReplicaSet \"{name}-77aa1\" has timed out progressing."})
    return {"metadata": meta(name, annotations={"deployment.kubernetes.io/revision": revision}),
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": image}]}}},
            "status": {"readyReplicas": ready, "replicas": replicas, "updatedReplicas": 1,
                       "conditions": conditions}}


DEPLOYMENTS = {"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {}, "items": [
    deployment("checkout", 3, 3, "reg/checkout:v2.14.0", True, "7"),
    deployment("payments", 2, 3, "reg/payments:v3.2.1-rc", False, "4"),
]}


def replica_set(name: str, owner: str, revision: str, created: str, image: str) -> dict[str, Any]:
    return {"metadata": {**meta(name), "creationTimestamp": created,
                         "annotations": {"deployment.kubernetes.io/revision": revision,
                                         "kubernetes.io/change-cause": f"deploy {image}"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": owner,
                                              "uid": "d", "controller": True}]},
            "spec": {"selector": {"matchLabels": {"app": owner}},
                     "template": {"spec": {"containers": [{"name": owner, "image": image}]}}}}


REPLICA_SETS = {"kind": "ReplicaSetList", "apiVersion": "apps/v1", "metadata": {}, "items": [
    replica_set("checkout-11111", "checkout", "6", "2025-03-11T10:00:00Z", "reg/checkout:v2.13.1"),
    replica_set("checkout-6c7b8", "checkout", "7", "2025-03-14T14:46:00Z", "reg/checkout:v2.14.0"),
    replica_set("cart-5d8f9", "cart", "3", "2025-03-08T10:00:00Z", "reg/cart:v1.8.2"),
]}

NODES = {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": [
    {"metadata": meta("node-1", ns=None), "spec": {},
     "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}],
                "nodeInfo": {"kubeletVersion": "v1.30.4", "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "",
                             "kernelVersion": "", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "linux",
                             "osImage": "", "systemUUID": ""}}},
    {"metadata": meta("node-2", ns=None), "spec": {"unschedulable": True},
     "status": {"conditions": [{"type": "Ready", "status": "False", "message": "kubelet stopped posting"},
                               {"type": "DiskPressure", "status": "True"}]}},
]}


@pytest.fixture
async def api() -> AsyncIterator[FakeHTTP]:
    fake = FakeHTTP()
    await fake.start(ssl_context=local_pki().server_context())
    fake.route("GET", "/api/v1/pods", (200, PODS))
    fake.route("GET", "/api/v1/namespaces/shop/pods", (200, PODS))
    fake.route("GET", "/api/v1/namespaces/shop/events", (200, EVENTS))
    fake.route("GET", "/api/v1/events", (200, EVENTS))
    fake.route("GET", "/apis/apps/v1/deployments", (200, DEPLOYMENTS))
    fake.route("GET", "/apis/apps/v1/namespaces/shop/replicasets", (200, REPLICA_SETS))
    fake.route("GET", "/api/v1/nodes", (200, NODES))
    yield fake
    await fake.close()


def host_ctx(api: FakeHTTP) -> ToolContext:
    block = {"host": api.url, "token": TOKEN, "ca_cert": local_pki().ca.cert.decode()}
    return ToolContext(integrations={"kubernetes": block}, clock=lambda: NOW)


def kubeconfig_doc(server: str, user: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "demo", "preferences": {},
            "clusters": [{"name": "c", "cluster": {"server": server,
                                                   "certificate-authority-data": local_pki().ca.cert_b64}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "demo", "context": {"cluster": "c", "user": "u", "namespace": "shop"}}]}


def kubeconfig_ctx(api: FakeHTTP) -> ToolContext:
    kubeconfig = yaml.safe_dump(kubeconfig_doc(api.url, {"token": TOKEN}))
    return ToolContext(integrations={"kubernetes": {"kubeconfig": kubeconfig}}, clock=lambda: NOW)


async def run(tool: str, args: dict[str, Any], ctx: ToolContext, **kw: Any) -> ToolResult:
    return await execute(TOOLS[tool], args, ctx, backoff_s=0.001, **kw)


@pytest.mark.parametrize("make_ctx", [host_ctx, kubeconfig_ctx])
async def test_list_pods_reasons(api: FakeHTTP, make_ctx: Any) -> None:
    result = await run("kubernetes_list_pods", {"namespace": "shop", "label_selector": "tier=web"}, make_ctx(api))
    assert result.ok, result.message
    by_name = {o.name: o for o in result.evidence.objects}
    cart = by_name["cart-5d8f9-abcde"]
    assert cart.reasons == ["CrashLoopBackOff", "OOMKilled"] and cart.restarts == 7 and cart.ready == "0/1"
    assert cart.owner == "deployment/cart" and cart.namespace == "shop"
    assert by_name["payments-77aa1-xyz12"].reasons == ["ImagePullBackOff"]
    assert by_name["payments-77aa1-xyz12"].status == "Pending"
    assert by_name["checkout-6c7b8-q1w2e"].reasons == [] and by_name["checkout-6c7b8-q1w2e"].ready == "1/1"
    assert by_name["checkout-6c7b8-q1w2e"].extra["claims"] == ["checkout-data"] and cart.extra["claims"] == []
    req = api.calls("/api/v1/namespaces/shop/pods")[0]
    assert req.headers["Authorization"] == f"Bearer {TOKEN}" and req.arg("labelSelector") == "tier=web"
    assert "2 unhealthy" in result.summary


async def test_list_pods_all_namespaces(api: FakeHTTP) -> None:
    result = await run("kubernetes_list_pods", {}, host_ctx(api))
    assert result.ok and len(result.evidence.objects) == 3 and api.calls("/api/v1/pods")


async def test_events_window_and_filters(api: FakeHTTP) -> None:
    result = await run("kubernetes_get_events", {"namespace": "shop", "warnings_only": True,
                                                 "object_name": "cart-5d8f9-abcde", "since_minutes": 60},
                       host_ctx(api))
    assert result.ok
    assert [(e.reason, e.count, e.kind) for e in result.evidence.events] == [("BackOff", 21, "Pod")]  # old one cut
    selector = api.calls("/api/v1/namespaces/shop/events")[0].arg("fieldSelector")
    assert selector == "involvedObject.name=cart-5d8f9-abcde,type=Warning"


async def test_pod_logs(api: FakeHTTP) -> None:
    api.route("GET", "/api/v1/namespaces/shop/pods/cart-5d8f9-abcde/log", (200, (
        "2025-03-14T14:55:00.123456789Z FATAL ERROR: Reached heap limit\n"
        "2025-03-14T14:55:01Z INFO shutting down\n")))
    result = await run("kubernetes_get_pod_logs", {"namespace": "shop", "pod": "cart-5d8f9-abcde", "previous": True,
                                                   "tail_lines": 50}, host_ctx(api))
    assert result.ok
    first, second = result.evidence.logs
    assert first.entity == "shop/pod/cart-5d8f9-abcde" and first.level == "fatal"
    assert first.at == datetime(2025, 3, 14, 14, 55, 0, 123456, tzinfo=UTC) and second.level == "info"
    req = api.calls("/api/v1/namespaces/shop/pods/cart-5d8f9-abcde/log")[0]
    assert req.arg("previous") == "true" and req.arg("tailLines") == "50" and req.arg("timestamps") == "true"


async def test_pod_logs_unknown_pod_is_not_found(api: FakeHTTP) -> None:
    result = await run("kubernetes_get_pod_logs", {"namespace": "shop", "pod": "ghost"}, host_ctx(api))
    assert result.error == "not_found" and result.attempts == 1


async def test_deployments(api: FakeHTTP) -> None:
    result = await run("kubernetes_list_deployments", {}, host_ctx(api))
    assert result.ok
    payments = next(o for o in result.evidence.objects if o.name == "payments")
    assert payments.status == "Unavailable" and payments.ready == "2/3"
    assert "ProgressDeadlineExceeded" in payments.reasons and payments.image == "reg/payments:v3.2.1-rc"
    assert "payments" in result.summary


async def test_rollout_history(api: FakeHTTP) -> None:
    result = await run("kubernetes_rollout_history", {"namespace": "shop", "deployment": "checkout"}, host_ctx(api))
    assert result.ok
    assert [c.ref for c in result.evidence.changes] == ["revision 7", "revision 6"]
    newest = result.evidence.changes[0]
    assert newest.entity == "shop/deployment/checkout" and "v2.14.0" in newest.description
    assert newest.at == datetime(2025, 3, 14, 14, 46, tzinfo=UTC)
    missing = await run("kubernetes_rollout_history", {"namespace": "shop", "deployment": "ghost"}, host_ctx(api))
    assert missing.error == "not_found"


async def test_nodes(api: FakeHTTP) -> None:
    result = await run("kubernetes_list_nodes", {}, host_ctx(api))
    assert result.ok
    node2 = next(o for o in result.evidence.objects if o.name == "node-2")
    assert node2.status == "NotReady" and set(node2.reasons) == {"DiskPressure", "NotReady", "Unschedulable"}


async def test_restart_needs_approval_then_patches(api: FakeHTTP) -> None:
    seen: list[dict] = []

    async def patch(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response(deployment("checkout", 3, 3, "reg/checkout:v2.14.0", True, "8"))

    api.route("PATCH", "/apis/apps/v1/namespaces/shop/deployments/checkout", patch)
    args = {"namespace": "shop", "deployment": "checkout"}
    refused = await run("kubernetes_restart_deployment", args, host_ctx(api))
    assert refused.error == "approval_required" and not seen
    done = await run("kubernetes_restart_deployment", args, host_ctx(api), approved=True)
    assert done.ok, done.message
    assert seen[0]["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == \
        "2025-03-14T15:00:00Z"


async def test_scale_needs_approval_then_patches(api: FakeHTTP) -> None:
    api.route("PATCH", "/apis/apps/v1/namespaces/shop/deployments/cart/scale", (200, {
        "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta("cart"), "spec": {"replicas": 4},
        "status": {"replicas": 2}}))
    args = {"namespace": "shop", "deployment": "cart", "replicas": 4}
    assert (await run("kubernetes_scale_deployment", args, host_ctx(api))).error == "approval_required"
    done = await run("kubernetes_scale_deployment", args, host_ctx(api), approved=True)
    assert done.ok and done.data["replicas"] == 4
    assert api.calls("/apis/apps/v1/namespaces/shop/deployments/cart/scale")[0].json() == {"spec": {"replicas": 4}}


async def test_api_errors_are_typed(api: FakeHTTP) -> None:
    api.route("GET", "/api/v1/nodes", (403, {"kind": "Status", "message": "forbidden", "code": 403}))
    assert (await run("kubernetes_list_nodes", {}, host_ctx(api))).error == "forbidden"
    api.route("GET", "/api/v1/nodes", (500, {"kind": "Status"}), (503, {"kind": "Status"}), (200, NODES))
    result = await run("kubernetes_list_nodes", {}, host_ctx(api))
    assert result.ok and result.attempts == 3


async def test_missing_credentials_are_not_configured() -> None:
    for block in ({"enabled": True}, {"host": "https://k.example"}, {"verify_ssl": True}):
        result = await run("kubernetes_list_nodes", {}, ToolContext(integrations={"kubernetes": block}))
        assert result.error == "not_configured" and result.attempts == 1, block


async def test_concurrent_calls_share_nothing(api: FakeHTTP) -> None:
    results = await asyncio.gather(*(run("kubernetes_list_pods", {"namespace": "shop"}, host_ctx(api))
                                     for _ in range(8)))
    assert all(r.ok and len(r.evidence.objects) == 3 for r in results)


async def test_client_certificate_authenticates_over_mutual_tls() -> None:
    pki = local_pki()
    fake = FakeHTTP()
    await fake.start(ssl_context=pki.server_context(require_client_cert=True))
    try:
        fake.route("GET", "/api/v1/nodes", (200, NODES))
        user = {"client-certificate-data": pki.client.cert_b64, "client-key-data": pki.client.key_b64}
        ctx = ToolContext(integrations={"kubernetes": {"kubeconfig": kubeconfig_doc(fake.url, user)}})
        result = await run("kubernetes_list_nodes", {}, ctx)
        assert result.ok, result.message
        assert "Authorization" not in fake.calls("/api/v1/nodes")[0].headers
        # The same server refuses a client without the certificate: the handshake is what admitted it.
        no_cert = await run("kubernetes_list_nodes", {}, host_ctx(fake))
        assert no_cert.error in ("unavailable", "connection_error") and len(fake.calls("/api/v1/nodes")) == 1
    finally:
        await fake.close()


async def test_certificate_files_live_only_for_the_call(api: FakeHTTP, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """CA and client-certificate data reach the client as files in a private directory that exists
    while the request is in flight and is gone when the call returns (success or failure)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen: list[list[str]] = []

    async def nodes(request: web.Request) -> web.Response:
        seen.append(sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")))
        return web.json_response(NODES)

    api.route("GET", "/api/v1/nodes", nodes)
    assert (await run("kubernetes_list_nodes", {}, host_ctx(api))).ok
    (workdir,) = {entry.split("/")[0] for entry in seen[0]}
    assert workdir.startswith("ifx-k8s-") and seen[0] == [workdir, f"{workdir}/ca.crt"]
    assert list(tmp_path.iterdir()) == []
    api.route("GET", "/api/v1/nodes", (403, {"kind": "Status", "code": 403}))
    assert (await run("kubernetes_list_nodes", {}, kubeconfig_ctx(api))).error == "forbidden"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("tool, args, path", [
    ("kubernetes_list_pods", {"namespace": "shop"}, "/api/v1/namespaces/shop/pods"),
    ("kubernetes_get_events", {}, "/api/v1/events"),
    ("kubernetes_list_deployments", {}, "/apis/apps/v1/deployments"),
    ("kubernetes_rollout_history", {"namespace": "shop"}, "/apis/apps/v1/namespaces/shop/replicasets"),
    ("kubernetes_get_pod_logs", {"namespace": "shop", "pod": "p"}, "/api/v1/namespaces/shop/pods/p/log"),
])
async def test_each_read_tool_maps_denial(api: FakeHTTP, tool: str, args: dict, path: str) -> None:
    api.route("GET", path, (403, {"kind": "Status", "message": "forbidden", "code": 403}))
    result = await run(tool, args, host_ctx(api))
    assert result.error == "forbidden" and result.attempts == 1


@pytest.mark.parametrize("tool, args, path", [
    ("kubernetes_restart_deployment", {"namespace": "shop", "deployment": "ghost"},
     "/apis/apps/v1/namespaces/shop/deployments/ghost"),
    ("kubernetes_scale_deployment", {"namespace": "shop", "deployment": "ghost", "replicas": 1},
     "/apis/apps/v1/namespaces/shop/deployments/ghost/scale"),
])
async def test_approved_mutation_of_a_missing_deployment(api: FakeHTTP, tool: str, args: dict, path: str) -> None:
    api.route("PATCH", path, (404, {"kind": "Status", "message": "not found", "code": 404}))
    result = await run(tool, args, host_ctx(api), approved=True)
    assert result.error == "not_found"
