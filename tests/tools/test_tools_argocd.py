"""``argocd_list_applications`` against a local server speaking Argo CD's ``/api/v1/applications``,
and the recorded CLI text read into the same evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from actors.tools.base import ToolContext, ToolResult
from actors.tools.demo.backend import answer
from actors.tools.demo.world import build_world
from actors.tools.execute import execute
from actors.tools.playbooks import playbook
from actors.tools.registry import TOOLS
from evaluation.recordings.argocd import parse_app_get, parse_app_list
from tests.tools_fakes import FakeHTTP

NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
MISSING_NS = 'namespaces "shop-typo" not found'


def app(name: str, *, sync: str, health: str, phase: str = "Succeeded", message: str = "",
        resources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "argocd"},
            "status": {"sync": {"status": sync, "revision": "b882d15"}, "health": {"status": health},
                       "operationState": {"phase": phase, "message": message, "finishedAt": "2025-03-14T14:50:00Z"},
                       "resources": resources or []}}


APPS = {"items": [
    app("shop", sync="OutOfSync", health="Missing", phase="Failed",
        message=f"one or more objects failed to apply, reason: {MISSING_NS}",
        resources=[{"kind": "Service", "namespace": "shop-typo", "name": "auth", "status": "OutOfSync",
                    "health": {"status": "Missing", "message": MISSING_NS}},
                   {"kind": "Deployment", "namespace": "shop", "name": "web", "status": "Synced",
                    "health": {"status": "Healthy"}}]),
    app("billing", sync="Synced", health="Healthy"),
]}


def ctx(http: FakeHTTP) -> ToolContext:
    return ToolContext(integrations={"argocd": {"url": http.url, "token": "argocd-token-123"}}, clock=lambda: NOW)


async def run(args: dict[str, Any], c: ToolContext) -> ToolResult:
    return await execute(TOOLS["argocd_list_applications"], args, c, backoff_s=0.001)


async def test_a_failed_sync_is_reported_with_its_message_and_the_resources_it_hit(http: FakeHTTP) -> None:
    http.route("GET", "/api/v1/applications", (200, APPS))
    result = await run({"name": None}, ctx(http))
    assert result.ok, result.message
    assert http.calls("/api/v1/applications")[0].headers["Authorization"] == "Bearer argocd-token-123"
    shop, billing = result.evidence.objects
    assert (shop.kind, shop.namespace, shop.name, shop.status) == ("Application", "argocd", "shop", "OutOfSync")
    assert shop.reasons == ["SyncFailed", "Missing"] and MISSING_NS in shop.message
    assert [r["name"] for r in shop.extra["resources"]] == ["auth"]
    assert billing.reasons == [] and billing.extra["health"] == "Healthy"
    assert result.summary == "2 Argo CD applications, 1 with problems: shop (SyncFailed, Missing)"
    assert "argocd-token-123" not in result.model_dump_json()


async def test_one_application_by_name_and_a_bad_body(http: FakeHTTP) -> None:
    http.route("GET", "/api/v1/applications", (200, {"items": APPS["items"][1:]}), (200, ["not", "an", "object"]))
    one = await run({"name": "billing"}, ctx(http))
    assert one.ok and http.calls("/api/v1/applications")[0].arg("name") == "billing"
    assert (await run({"name": None}, ctx(http))).error == "upstream_error"


def test_the_recorded_cli_output_reads_like_the_api() -> None:
    get = parse_app_get(f"""Name:               argocd/shop
Project:            default
Sync Status:        OutOfSync from HEAD (b882d15)
Health Status:      Missing

Operation:          Sync
Phase:              Failed
Message:            one or more objects failed to apply, reason: {MISSING_NS}

GROUP  KIND     NAMESPACE  NAME  STATUS     HEALTH   HOOK  MESSAGE
       Service  shop-typo  auth  OutOfSync  Missing        {MISSING_NS}
apps   Deployment  shop    web   Synced     Healthy        deployment.apps/web unchanged
""")
    assert [(o.namespace, o.name, o.status, o.reasons) for o in get] == [
        ("argocd", "shop", "OutOfSync", ["SyncFailed", "Missing"])]
    assert [r["name"] for r in get[0].extra["resources"]] == ["auth"]
    listed = parse_app_list("NAME         CLUSTER   NAMESPACE  PROJECT  STATUS     HEALTH\n"
                            "argocd/shop  in-cluster           default  OutOfSync  Missing\n")
    assert [(o.name, o.reasons) for o in listed] == [("shop", ["Missing"])]


def test_the_changes_playbook_asks_argocd_only_where_it_is_configured() -> None:
    assert ("argocd_list_applications", {"name": None}) in playbook("changes", window=60,
                                                                     available={"argocd_list_applications"})
    assert "argocd_list_applications" not in [t for t, _ in playbook("changes", window=60, available=set())]
    demo = answer("argocd_list_applications", {"name": None}, build_world())
    assert demo.ok and demo.data == [] and demo.summary.startswith("0 Argo CD applications")
