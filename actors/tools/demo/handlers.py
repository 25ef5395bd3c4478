"""Demo-world answers for every tool, keyed by tool name: ``handler(args, world) -> ToolResult``.

Handlers are pure and synchronous (no I/O); :mod:`actors.tools.demo.backend` adds the simulated
latency. Metric and log queries are answered by :mod:`actors.tools.demo.signals`; everything else
(Kubernetes objects, changes, cloud resources, Slack) here, in the live backends' shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.tools.base import ToolError, ToolResult
from actors.tools.convert import changes_result, error_count, events_result, iso, logs_result
from actors.tools.demo.scenarios import BASELINE, DATABASE, NAMESPACE, SERVICES
from actors.tools.demo.signals import (
    cloudwatch_logs,
    cloudwatch_metric,
    coralogix_logs,
    datadog_logs,
    elasticsearch_logs,
    loki_logs,
    query_instant,
    query_range,
    services_in,
    since_ts,
)
from actors.tools.demo.traces import HANDLERS as TRACE_HANDLERS
from actors.tools.demo.world import World
from incidentfox.evidence import EvidenceBundle, LogLine, ObjectState, TopologyEdge

Handler = Callable[[dict[str, Any], World], ToolResult]


def _objects_result(objects: list, what: str) -> ToolResult:
    bad = [
        o
        for o in objects
        if o.reasons or o.status not in ("Running", "Ready", "Available", "available", "running")
    ]
    data = [
        {
            "namespace": o.namespace,
            "name": o.name,
            "kind": o.kind,
            "status": o.status,
            "ready": o.ready,
            "restarts": o.restarts,
            "reasons": o.reasons,
            "owner": o.owner,
            "image": o.image,
        }
        for o in objects
    ]
    detail = f": {', '.join(f'{o.name} {o.reasons or o.status}' for o in bad[:5])}" if bad else ""
    return ToolResult.success(
        data,
        evidence=EvidenceBundle(objects=list(objects)),
        summary=f"{len(objects)} {what}, {len(bad)} unhealthy{detail}",
    )


def _in_namespace(args: dict[str, Any]) -> bool:
    return args.get("namespace") in (None, "", NAMESPACE)


def list_pods(args: dict[str, Any], world: World) -> ToolResult:
    services = services_in(args.get("label_selector"))
    pods = [
        p for p in world.pods if _in_namespace(args) and (not services or p.owner.split("/")[-1] in services)
    ]
    return _objects_result(pods[: args.get("limit") or 200], "pods")


def list_deployments(args: dict[str, Any], world: World) -> ToolResult:
    services = services_in(args.get("label_selector"))
    deps = [d for d in world.deployments if _in_namespace(args) and (not services or d.name in services)]
    return _objects_result(deps, "deployments")


def list_nodes(args: dict[str, Any], world: World) -> ToolResult:
    return _objects_result(list(world.nodes), "nodes")


def list_jobs(args: dict[str, Any], world: World) -> ToolResult:
    """The demo world runs no batch Jobs: an empty list, as a cluster without any answers."""
    return _objects_result([], "jobs")


def describe_pod(args: dict[str, Any], world: World) -> ToolResult:
    """A demo pod as ``kubernetes_describe_pod`` shows it: its state, no declared limits, its events."""
    pod = next((p for p in world.pods if p.name == args["pod"] and _in_namespace(args)), None)
    if pod is None:
        raise ToolError("not_found", f"kubernetes API returned HTTP 404: pod {args['pod']!r} not found")
    events = [e for e in world.events if e.name == pod.name and e.at.timestamp() >= since_ts(world, args)]
    return ToolResult.success(
        {"namespace": pod.namespace, "name": pod.name, "status": pod.status, "ready": pod.ready,
         "restarts": pod.restarts, "reasons": pod.reasons, "containers": [], "conditions": [],
         "events": [{"type": e.type, "reason": e.reason, "message": e.message, "count": e.count} for e in events]},
        evidence=EvidenceBundle(objects=[pod], events=events),
        summary=f"pod {pod.namespace}/{pod.name} {pod.status} ({pod.ready} ready), {pod.restarts} restarts, "
                f"{len(events)} events",
    )


def list_volume_claims(args: dict[str, Any], world: World) -> ToolResult:
    """The demo world mounts no persistent volumes: an empty list, as a cluster without any answers."""
    return _objects_result([], "volume claims")


def rabbitmq_status(args: dict[str, Any], world: World) -> ToolResult:
    """The demo world runs no RabbitMQ: no nodes, as a management API of an empty cluster answers."""
    return ToolResult.success([], summary="0 RabbitMQ nodes, 0 with problems")


def argocd_apps(args: dict[str, Any], world: World) -> ToolResult:
    """The demo world deploys without Argo CD: no applications."""
    return ToolResult.success([], summary="0 Argo CD applications, 0 with problems")


def get_events(args: dict[str, Any], world: World) -> ToolResult:
    start = since_ts(world, args)
    events = [
        e
        for e in world.events
        if _in_namespace(args)
        and e.at.timestamp() >= start
        and (not args.get("warnings_only") or e.type == "Warning")
        and (not args.get("object_name") or e.name == args["object_name"])
    ][: args.get("limit") or 100]
    return events_result(events)


def _deployment(world: World, args: dict[str, Any]) -> str:
    name = args["deployment"]
    if not _in_namespace(args) or name not in SERVICES:
        raise ToolError("not_found", f"kubernetes API returned HTTP 404: deployment {name!r} not found")
    return name


def pod_logs(args: dict[str, Any], world: World) -> ToolResult:
    pod = next((p for p in world.pods if p.name == args["pod"] and _in_namespace(args)), None)
    if pod is None:
        raise ToolError("not_found", f"kubernetes API returned HTTP 404: pod {args['pod']!r} not found")
    service = pod.owner.split("/")[-1]
    start = since_ts(world, args, default=24 * 60)
    mine = [ln for ln in world.logs if ln.entity == service and ln.at.timestamp() >= start]
    if args.get("previous"):
        mine = [ln for ln in mine if ln.level == "fatal"] or mine
    entity = f"{NAMESPACE}/pod/{pod.name}"
    lines = [
        LogLine(entity=entity, text=ln.text, level=ln.level, at=ln.at)
        for ln in mine[: args.get("tail_lines") or 200]
    ]
    summary = f"{len(lines)} log lines from {pod.name}, {error_count(lines)} errors"
    return logs_result(lines, summary, service=False)


def rollout_history(args: dict[str, Any], world: World) -> ToolResult:
    name = _deployment(world, args) if args.get("deployment") else None
    start = since_ts(world, args, default=30 * 24 * 60)
    changes = [
        c
        for c in world.rollouts
        if _in_namespace(args) and (not name or c.entity.endswith(f"/{name}")) and c.at.timestamp() >= start
    ][: args.get("limit") or 50]
    return changes_result(changes, "rollouts")


def _simulated(action: str) -> Handler:
    def run(args: dict[str, Any], world: World) -> ToolResult:
        name = _deployment(world, args)
        note = f"{action} {NAMESPACE}/{name} (simulated in the demo world; nothing changed)"
        return ToolResult.success(
            {
                "deployment": f"{NAMESPACE}/{name}",
                "simulated": True,
                **({"replicas": args["replicas"]} if "replicas" in args else {}),
            },
            evidence=EvidenceBundle(notes=[note]),
            summary=note,
        )

    return run


def _simulated_revert(args: dict[str, Any], world: World) -> ToolResult:
    note = (f"revert pull request for {args['repo']}@{str(args['sha'])[:7]} (simulated in the demo world; "
            "nothing opened)")
    return ToolResult.success({"repo": args["repo"], "reverts": args["sha"], "simulated": True},
                              evidence=EvidenceBundle(notes=[note]), summary=note)


def _github(attr: str, what: str) -> Handler:
    def run(args: dict[str, Any], world: World) -> ToolResult:
        repo = args.get("repo")
        svc = repo.split("/")[-1] if repo else None
        if repo and (not repo.startswith("acme/") or svc not in SERVICES):
            raise ToolError("not_found", f"github returned HTTP 404: repository {repo} not found")
        start = since_ts(world, args, default=24 * 60)
        changes = [
            c for c in getattr(world, attr) if (not svc or c.entity == svc) and c.at.timestamp() >= start
        ]
        return changes_result(changes[: args.get("limit") or 30], what)

    return run


def workflow_runs(args: dict[str, Any], world: World) -> ToolResult:
    result = _github("gh_deployments", "deployments")(args, world)
    data = [
        {
            "repo": f"acme/{c.entity}",
            "name": "deploy-production",
            "status": "completed",
            "conclusion": "success",
            "branch": "main",
            "sha": c.ref,
            "at": iso(c.at),
        }
        for c in result.evidence.changes
    ]
    return ToolResult.success(
        data, evidence=result.evidence, summary=f"{len(data)} workflow runs, 0 failed, {len(data)} deploys"
    )


def annotations(args: dict[str, Any], world: World) -> ToolResult:
    start = since_ts(world, args, default=24 * 60)
    changes = [
        c.model_copy(update={"ref": f"annotation {i}"})
        for i, c in enumerate(world.gh_deployments)
        if c.at.timestamp() >= start
    ][: args.get("limit") or 100]
    return changes_result(changes, "annotations")


def firing_alerts(args: dict[str, Any], world: World) -> ToolResult:
    a = world.alert
    alert = {
        "name": a.title,
        "state": "Alerting",
        "service": a.entity,
        "since": iso(a.started_at),
        "value": None,
        "summary": a.text,
        "labels": a.labels,
    }
    note = f"Grafana alert {a.title!r} Alerting on {a.entity} since {iso(a.started_at)}"
    return ToolResult.success(
        [alert], evidence=EvidenceBundle(alert=a, notes=[note]), summary=f"1 alerts firing: {a.title}"
    )


def ecs_services(args: dict[str, Any], world: World) -> ToolResult:
    if args.get("cluster"):
        raise ToolError("not_found", "aws ecs: ClusterNotFoundException: Cluster not found.")
    return ToolResult.success([], summary="0 ECS services (the shop runs on EKS)")


def rds_instances(args: dict[str, Any], world: World) -> ToolResult:
    if args.get("identifier") not in (None, DATABASE):
        raise ToolError("not_found", f"aws rds: DBInstanceNotFound: {args['identifier']}")
    return _objects_result(list(world.databases), "RDS instances")


def ec2_status(args: dict[str, Any], world: World) -> ToolResult:
    ids = set(args.get("instance_ids") or ())
    return _objects_result([i for i in world.instances if not ids or i.name in ids], "EC2 instances")


def slack_thread(args: dict[str, Any], world: World) -> ToolResult:
    data = [dict(m) for m in world.slack][: args.get("limit") or 100]
    note = f"Slack thread {args['channel']}/{args['thread_ts']}: {len(data)} messages"
    return ToolResult.success(
        {"untrusted_messages": data}, evidence=EvidenceBundle(notes=[note]), summary=note
    )


def service_map(args: dict[str, Any], world: World) -> ToolResult:
    edges = list(world.topology)
    return ToolResult.success(
        [{"caller": e.caller, "callee": e.callee} for e in edges],
        evidence=EvidenceBundle(topology=edges),
        summary="; ".join(f"{e.caller} → {e.callee}" for e in edges),
    )


def service_graph(args: dict[str, Any], world: World) -> ToolResult:
    """The world's call graph as a service-graph metric query answers it (calls over the window)."""
    minutes = args.get("since_minutes") or 60
    edges = [TopologyEdge(caller=e.caller, callee=e.callee, sources=["service_graph"],
                          calls=round(BASELINE[e.callee].get("requests", 10.0) * 60 * minutes))
             for e in world.topology]
    return ToolResult.success(
        [{"caller": e.caller, "callee": e.callee, "calls": e.calls} for e in edges],
        evidence=EvidenceBundle(topology=edges),
        summary=f"{len(edges)} edges from {args.get('metric') or 'traces_service_graph_request_total'}: "
        + "; ".join(f"{e.caller} → {e.callee} ({e.calls:.0f})" for e in edges),
    )


def list_services(args: dict[str, Any], world: World) -> ToolResult:
    """One Kubernetes service per deployment, backed by that deployment's pods."""
    wanted = services_in(args.get("label_selector"))
    out = []
    for svc in SERVICES:
        if not _in_namespace(args) or (wanted and svc not in wanted):
            continue
        pods = [p for p in world.pods if p.owner.split("/")[-1] == svc]
        ready = sum(1 for p in pods if p.ready.split("/")[0] == p.ready.split("/")[-1])
        out.append(ObjectState(namespace=NAMESPACE, kind="Service", name=svc, extra={
            "type": "ClusterIP", "selector": {"app": svc}, "ports": [8080], "pods": [p.name for p in pods],
            "workloads": [f"deployment/{svc}"], "endpoints": len(pods), "ready_endpoints": ready}))
    data = [{"namespace": o.namespace, "name": o.name, "workloads": o.extra["workloads"],
             "pods": len(o.extra["pods"]), "ready_endpoints": o.extra["ready_endpoints"],
             "endpoints": o.extra["endpoints"]} for o in out]
    empty = [o.name for o in out if o.extra["endpoints"] and not o.extra["ready_endpoints"]]
    return ToolResult.success(data, evidence=EvidenceBundle(objects=out), summary=f"{len(out)} services"
                              + (f", no ready endpoints: {', '.join(empty)}" if empty else ""))


HANDLERS: dict[str, Handler] = {
    "kubernetes_list_pods": list_pods,
    "kubernetes_get_events": get_events,
    "kubernetes_get_pod_logs": pod_logs,
    "kubernetes_list_deployments": list_deployments,
    "kubernetes_rollout_history": rollout_history,
    "kubernetes_list_nodes": list_nodes,
    "kubernetes_restart_deployment": _simulated("rollout restart of"),
    "kubernetes_scale_deployment": _simulated("scale of"),
    "kubernetes_rollback_deployment": _simulated("rollback of"),
    "github_open_revert_pr": _simulated_revert,
    "prometheus_query": query_instant,
    "prometheus_query_range": query_range,
    "loki_query_logs": loki_logs,
    "github_recent_commits": _github("commits", "commits"),
    "github_deployments": _github("gh_deployments", "deployments"),
    "github_pull_requests": _github("pull_requests", "pull requests"),
    "github_workflow_runs": workflow_runs,
    # The demo world's GitHub reports its deployments by webhook too.
    "github_recorded_changes": _github("gh_deployments", "recorded changes"),
    "aws_cloudwatch_metric": cloudwatch_metric,
    "aws_cloudwatch_logs": cloudwatch_logs,
    "aws_ecs_services": ecs_services,
    "aws_rds_instances": rds_instances,
    "aws_ec2_instance_status": ec2_status,
    "slack_thread_history": slack_thread,
    "datadog_query_metrics": query_range,
    "datadog_search_logs": datadog_logs,
    "grafana_firing_alerts": firing_alerts,
    "grafana_annotations": annotations,
    "coralogix_query_logs": coralogix_logs,
    "elasticsearch_search_logs": elasticsearch_logs,
    "demo_service_map": service_map,
    "prometheus_service_graph": service_graph,
    "kubernetes_list_services": list_services,
    "kubernetes_list_jobs": list_jobs,
    "kubernetes_describe_pod": describe_pod,
    "kubernetes_list_volume_claims": list_volume_claims,
    "rabbitmq_cluster_status": rabbitmq_status,
    "argocd_list_applications": argocd_apps,
    **TRACE_HANDLERS,
}
