"""RabbitMQ tool: cluster health from the management API's ``GET /api/nodes``.

``integrations.rabbitmq``: ``url`` (the management API, e.g. ``http://rabbitmq:15672``; required),
``username``/``password`` (basic auth, the usual for the management plugin) or ``token`` (bearer),
optional ``headers`` and ``verify_ssl``. Needs a user with the ``monitoring`` tag.

Each node becomes evidence about the workload that runs it: a node named
``rabbit@<pod>.<service>.<namespace>.svc…`` (a StatefulSet behind a headless Service, how RabbitMQ
runs on Kubernetes) is the pod ``<namespace>/pod/<pod>``, any other host its first DNS label.
Problems are warning events on that entity (:func:`node_evidence`, pure): ``NodeDown`` (not
running), ``NetworkPartition`` (the node sees others on the far side of a partition),
``MemoryAlarm`` / ``DiskAlarm`` (publishers blocked), which the ranker weighs like other warnings.
"""

from __future__ import annotations

import re
from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, spec_builder
from actors.tools.httpcall import base_url, config_auth, request_json
from incidentfox.evidence import EvidenceBundle, K8sEvent, ObjectState

TIMEOUT_S = 20.0
_K8S_HOST = re.compile(r"^([a-z0-9][a-z0-9-]*)\.[a-z0-9-]+\.([a-z0-9-]+)\.svc(?:\.|$)")
spec = spec_builder(category="observability", integration="rabbitmq", timeout_s=TIMEOUT_S)


def node_entity(node: str) -> tuple[str, str, str]:
    """``(namespace, kind, name)`` of the workload running RabbitMQ node ``node``."""
    host = node.partition("@")[2] or node
    m = _K8S_HOST.match(host)
    if m:
        return m.group(2), "pod", m.group(1)
    return "", "", host.split(".")[0]


def _short(node: str) -> str:
    return node_entity(str(node))[2]


def node_evidence(nodes: list[dict[str, Any]]) -> EvidenceBundle:
    """Nodes of ``/api/nodes`` as evidence: one state per node, a warning event per problem."""
    objects, events = [], []
    for n in nodes:
        if not isinstance(n, dict) or not n.get("name"):
            continue
        ns, kind, name = node_entity(str(n["name"]))
        problems: list[tuple[str, str]] = []
        if n.get("running") is False:
            problems.append(("NodeDown", f"RabbitMQ node {n['name']} is not running"))
        partitions = [str(p) for p in n.get("partitions") or []]
        if partitions:
            problems.append(("NetworkPartition", (f"RabbitMQ node {n['name']} reports a network partition: it "
                                                  f"cannot reach {', '.join(_short(p) for p in partitions)}")))
        if n.get("mem_alarm"):
            problems.append(("MemoryAlarm", f"RabbitMQ node {n['name']} raised the memory alarm: publishers are blocked"))
        if n.get("disk_free_alarm"):
            problems.append(("DiskAlarm", f"RabbitMQ node {n['name']} raised the disk-free alarm: publishers are blocked"))
        objects.append(ObjectState(namespace=ns, kind="RabbitMQNode", name=str(n["name"]),
                                   status="Running" if n.get("running") else "Stopped",
                                   reasons=[r for r, _ in problems],
                                   extra={"runs_in": f"{kind}/{name}" if kind else name, "partitions": partitions, "mem_alarm": bool(n.get("mem_alarm")),
                                          "disk_free_alarm": bool(n.get("disk_free_alarm"))}))
        events += [K8sEvent(namespace=ns, kind=kind, name=name, type="Warning", reason=r, message=m)
                   for r, m in problems]
    return EvidenceBundle(objects=objects, events=events)


async def cluster_status(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    config = ctx.integration("rabbitmq")
    headers, auth = config_auth(config)
    body = await request_json(ctx, "GET", f"{base_url(config, service='rabbitmq')}/api/nodes", service="rabbitmq",
                              timeout=TIMEOUT_S, headers={"Accept": "application/json", **headers}, auth=auth,
                              verify=bool(config.get("verify_ssl", True)))
    if not isinstance(body, list):
        raise ToolError("upstream_error", "rabbitmq returned an unexpected body for /api/nodes")
    evidence = node_evidence(body)
    data = [{"node": o.name, "running": o.status == "Running", "problems": o.reasons,
             "partitions": o.extra["partitions"]} for o in evidence.objects]
    bad = [o for o in evidence.objects if o.reasons]
    return ToolResult.success(
        data, evidence=evidence,
        summary=f"{len(data)} RabbitMQ nodes, {len(bad)} with problems"
        + (": " + "; ".join(f"{_short(o.name)} ({', '.join(o.reasons)})" for o in bad[:5]) if bad else ""))


SPECS: list[ToolSpec] = [
    spec("rabbitmq_cluster_status", cluster_status,
         "RabbitMQ cluster health from the management API: each node, whether it is running, network "
         "partitions it reports (a split cluster), and memory or disk alarms that block publishers.",
         s.obj()),
]
