"""``kubernetes_list_volume_claims`` on the official client against a local server speaking the core API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from actors.tools.base import ToolContext, ToolResult
from actors.tools.demo.backend import answer
from actors.tools.demo.world import build_world
from actors.tools.execute import execute
from actors.tools.registry import TOOLS
from tests.kube_api_kit import kube_ctx
from tests.tls_certs import local_pki
from tests.tools_fakes import FakeHTTP

NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)


def claim(name: str, phase: str, *, storage_class: str, volume: str = "", capacity: str = "") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "cache", "uid": f"uid-{name}",
                     "creationTimestamp": "2025-03-14T14:40:00Z"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class, "volumeName": volume,
                 "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": phase, **({"capacity": {"storage": capacity}} if capacity else {})},
    }


CLAIMS = {"kind": "PersistentVolumeClaimList", "apiVersion": "v1", "metadata": {}, "items": [
    claim("data-pending", "Pending", storage_class="fast-ssd"),
    claim("data-bound", "Bound", storage_class="standard", volume="pv-1", capacity="1Gi"),
]}


@pytest.fixture
async def kube() -> AsyncIterator[FakeHTTP]:
    fake = FakeHTTP()
    await fake.start(ssl_context=local_pki().server_context())
    fake.route("GET", "/api/v1/namespaces/cache/persistentvolumeclaims", (200, CLAIMS))
    fake.route("GET", "/api/v1/persistentvolumeclaims", (200, CLAIMS))
    yield fake
    await fake.close()



async def run(args: dict[str, Any], c: ToolContext) -> ToolResult:
    return await execute(TOOLS["kubernetes_list_volume_claims"], args, c, backoff_s=0.001)


async def test_a_pending_claim_is_reported_with_its_storage_class(kube: FakeHTTP) -> None:
    result = await run({"namespace": "cache"}, kube_ctx(kube))
    assert result.ok, result.message
    pending, bound = result.evidence.objects
    assert (pending.kind, pending.namespace, pending.name, pending.status) == \
        ("PersistentVolumeClaim", "cache", "data-pending", "Pending")
    assert pending.reasons == ["Pending"] and pending.extra["storage_class"] == "fast-ssd"
    assert pending.extra["requested"] == "1Gi" and pending.extra["volume"] == ""
    assert (bound.status, bound.reasons, bound.extra["volume"], bound.extra["capacity"]) == ("Bound", [], "pv-1", "1Gi")
    assert result.summary == "2 volume claims, 1 not bound: data-pending (Pending)"
    assert result.data[0]["storage_class"] == "fast-ssd"
    assert "k8s-token-abcdef" not in result.model_dump_json()


async def test_all_namespaces_and_a_denial(kube: FakeHTTP) -> None:
    everywhere = await run({}, kube_ctx(kube))
    assert everywhere.ok and len(everywhere.evidence.objects) == 2 and kube.calls("/api/v1/persistentvolumeclaims")
    kube.route("GET", "/api/v1/namespaces/cache/persistentvolumeclaims",
               (403, {"kind": "Status", "code": 403, "message": "persistentvolumeclaims is forbidden"}))
    assert (await run({"namespace": "cache"}, kube_ctx(kube))).error == "forbidden"


def test_the_demo_world_answers_with_no_claims() -> None:
    result = answer("kubernetes_list_volume_claims", {"namespace": None, "label_selector": None, "limit": 50},
                    build_world())
    assert result.ok and result.data == [] and result.summary.startswith("0 volume claims")
