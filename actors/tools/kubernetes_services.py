"""``kubernetes_list_services``: services → endpoints → pods → owners.

One call reads Services, their EndpointSlices and the pods behind them (three list calls through
:func:`actors.tools.kubernetes_tools.api_call`, same credentials, egress check and error mapping) and
returns one ``Service`` object per service naming the workloads that serve it. The call graph
(:mod:`actors.ranking.topology`) uses that to join names: a trace's ``cart-svc`` and a metric's
``cart`` are one node when the service's pods belong to ``deployment/cart``. Needs ``list`` on
``services``, ``endpointslices`` (``discovery.k8s.io``) and ``pods``; a denial is ``forbidden``.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolResult, ToolSpec, spec_builder
from actors.tools.kubernetes_state import service_states
from actors.tools.kubernetes_tools import TIMEOUT_S, api_call
from incidentfox.evidence import EvidenceBundle


async def list_services(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    ns, selector, limit = args["namespace"], args["label_selector"] or "", args["limit"] or 200

    def fetch(api: k8s.ApiClient, t: tuple[float, float]) -> tuple[Any, Any, Any]:
        core, disc = k8s.CoreV1Api(api), k8s.DiscoveryV1Api(api)
        kw: dict[str, Any] = {"_request_timeout": t}
        if ns:
            return (core.list_namespaced_service(ns, label_selector=selector, limit=limit, **kw),
                    disc.list_namespaced_endpoint_slice(ns, **kw), core.list_namespaced_pod(ns, **kw))
        return (core.list_service_for_all_namespaces(label_selector=selector, limit=limit, **kw),
                disc.list_endpoint_slice_for_all_namespaces(**kw), core.list_pod_for_all_namespaces(**kw))

    services, slices, pods = await api_call(ctx, fetch)
    states = service_states(services.items, slices.items, pods.items)
    data = [{"namespace": o.namespace, "name": o.name, "workloads": o.extra["workloads"],
             "pods": len(o.extra["pods"]), "ready_endpoints": o.extra["ready_endpoints"],
             "endpoints": o.extra["endpoints"]} for o in states]
    empty = [o.name for o in states if o.extra["endpoints"] and not o.extra["ready_endpoints"]]
    return ToolResult.success(
        data, evidence=EvidenceBundle(objects=states),
        summary=f"{len(states)} services" + (f", no ready endpoints: {', '.join(empty[:10])}" if empty else ""),
    )


_spec = spec_builder(category="kubernetes", integration="kubernetes", timeout_s=TIMEOUT_S)

SPECS: list[ToolSpec] = [
    _spec(
        "kubernetes_list_services",
        list_services,
        "List services with the workloads (deployments, statefulsets…) whose pods back them and how many "
        "endpoints are ready. Use it to map service names to workloads and spot services with no ready "
        "endpoints.",
        s.obj(
            namespace=s.string("Namespace; null means all namespaces.", nullable=True, max_length=253),
            label_selector=s.string("Label selector, e.g. `app=checkout` (null: no filter).", nullable=True),
            limit=s.LIMIT,
        ),
    ),
]
