"""Pure conversions from Kubernetes API objects (the official client's models) to evidence.

Pods → :class:`ObjectState` with problem reasons from waiting/terminated states (CrashLoopBackOff,
ImagePullBackOff, OOMKilled…); events → :class:`K8sEvent`; deployments and nodes → ObjectState;
ReplicaSets → one :class:`ChangeEvent` per rollout revision.
"""

from __future__ import annotations

from typing import Any

from actors.tools.convert import iso, k8s_entity, parse_time
from incidentfox.evidence import ChangeEvent, K8sEvent, ObjectState


def _owner(meta: Any) -> str:
    for ref in meta.owner_references or []:
        kind, name = ref.kind.lower(), ref.name
        if kind == "replicaset" and (meta.labels or {}).get("pod-template-hash"):
            name = name.removesuffix("-" + meta.labels["pod-template-hash"])
            kind = "deployment"
        return f"{kind}/{name}"
    return ""


def pod_state(pod: Any) -> ObjectState:
    st = pod.status
    statuses = [*(st.init_container_statuses or []), *(st.container_statuses or [])]
    reasons: list[str] = []
    messages: list[str] = []
    for cs in statuses:
        for state in (cs.state, cs.last_state):
            if state is None:
                continue
            if state.waiting and state.waiting.reason:
                reasons.append(state.waiting.reason)
                messages.append(state.waiting.message or "")
            if state.terminated and state.terminated.reason and state.terminated.reason != "Completed":
                reasons.append(state.terminated.reason)
                messages.append(state.terminated.message or "")
    if st.reason:
        reasons.append(st.reason)
    main = st.container_statuses or []
    ready = sum(1 for cs in main if cs.ready)
    return ObjectState(
        namespace=pod.metadata.namespace or "",
        kind="Pod",
        name=pod.metadata.name,
        status=st.phase or "",
        ready=f"{ready}/{len(pod.spec.containers or [])}",
        restarts=sum(cs.restart_count or 0 for cs in main),
        reasons=list(dict.fromkeys(reasons)),
        image=(pod.spec.containers[0].image or "") if pod.spec.containers else "",
        message="; ".join(m for m in dict.fromkeys(messages) if m)[:500] or (st.message or ""),
        owner=_owner(pod.metadata),
        extra={
            "node": pod.spec.node_name,
            "labels": pod.metadata.labels or {},
            "started_at": iso(st.start_time),
            "claims": [v.persistent_volume_claim.claim_name for v in pod.spec.volumes or []
                       if v.persistent_volume_claim is not None],
        },
    )


def event_of(ev: Any) -> K8sEvent:
    at = ev.last_timestamp or ev.event_time or ev.first_timestamp or ev.metadata.creation_timestamp
    obj = ev.involved_object
    return K8sEvent(
        namespace=obj.namespace or ev.metadata.namespace or "",
        kind=obj.kind or "",
        name=obj.name or "",
        type=ev.type or "Normal",
        reason=ev.reason or "",
        message=(ev.message or "")[:1000],
        count=ev.count or 1,
        at=parse_time(at),
    )


def deployment_state(dep: Any) -> ObjectState:
    spec, st = dep.spec, dep.status
    desired = spec.replicas if spec.replicas is not None else 1
    conditions = {c.type: c for c in (st.conditions or [])}
    reasons = [c.reason for c in conditions.values() if c.status != "True" and c.reason]
    progressing = conditions.get("Progressing")
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        reasons.append("ProgressDeadlineExceeded")
    available = conditions.get("Available")
    status = "Available" if available is not None and available.status == "True" else "Unavailable"
    containers = spec.template.spec.containers or []
    annotations = dep.metadata.annotations or {}
    return ObjectState(
        namespace=dep.metadata.namespace or "",
        kind="Deployment",
        name=dep.metadata.name,
        status=status,
        ready=f"{st.ready_replicas or 0}/{desired}",
        reasons=list(dict.fromkeys(reasons)),
        image=containers[0].image if containers else "",
        message="; ".join(c.message for c in conditions.values() if c.status != "True" and c.message)[:500],
        extra={
            "revision": annotations.get("deployment.kubernetes.io/revision"),
            "updated_replicas": st.updated_replicas or 0,
            "unavailable_replicas": st.unavailable_replicas or 0,
            "images": [c.image for c in containers],
        },
    )


def node_state(node: Any) -> ObjectState:
    conditions = {c.type: c for c in (node.status.conditions or [])}
    ready = conditions.get("Ready")
    is_ready = ready is not None and ready.status == "True"
    reasons = [t for t, c in conditions.items() if t != "Ready" and c.status == "True"]
    if not is_ready:
        reasons.append("NotReady")
    if node.spec.unschedulable:
        reasons.append("Unschedulable")
    return ObjectState(
        kind="Node",
        name=node.metadata.name,
        status="Ready" if is_ready else "NotReady",
        reasons=reasons,
        message=(ready.message or "") if ready and not is_ready else "",
        extra={"kubelet": node.status.node_info.kubelet_version if node.status.node_info else ""},
    )


def rollout_changes(replica_sets: list[Any], deployment: str | None) -> list[ChangeEvent]:
    """ReplicaSets owned by deployments → one ChangeEvent per revision, newest first."""
    out: list[tuple[int, ChangeEvent]] = []
    for rs in replica_sets:
        owners = [r.name for r in (rs.metadata.owner_references or []) if r.kind == "Deployment"]
        if not owners or (deployment and owners[0] != deployment):
            continue
        ann = rs.metadata.annotations or {}
        revision = int(ann.get("deployment.kubernetes.io/revision", "0") or 0)
        containers = rs.spec.template.spec.containers or []
        images = ", ".join(c.image for c in containers)
        cause = ann.get("kubernetes.io/change-cause", "")
        desc = f"{owners[0]} revision {revision}: {images}" + (f" ({cause})" if cause else "")
        out.append(
            (
                revision,
                ChangeEvent(
                    entity=k8s_entity(rs.metadata.namespace, "deployment", owners[0]),
                    kind="deploy",
                    description=desc,
                    at=parse_time(rs.metadata.creation_timestamp),
                    ref=f"revision {revision}",
                ),
            )
        )
    out.sort(key=lambda pair: (pair[1].at.timestamp() if pair[1].at else 0.0, pair[0]), reverse=True)
    return [c for _, c in out]


def service_states(services: list[Any], slices: list[Any], pods: list[Any]) -> list[ObjectState]:
    """Services → one ``Service`` ObjectState each, joined through their EndpointSlices' pod
    targets to the pods' owners: ``extra["pods"]`` and ``extra["workloads"]`` (``deployment/cart``,
    ``statefulset/db``…) say which workloads serve the service (what the call graph uses to join
    names), ``extra["ready_endpoints"]``/``extra["endpoints"]`` how many of its endpoints are ready."""
    owners = {(p.metadata.namespace or "", p.metadata.name): _owner(p.metadata) for p in pods}
    members: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    for sl in slices:
        svc = (sl.metadata.labels or {}).get("kubernetes.io/service-name")
        if not svc:
            continue
        ns = sl.metadata.namespace or ""
        for ep in sl.endpoints or []:
            ref = ep.target_ref
            ready = ep.conditions is None or ep.conditions.ready is not False
            name = ref.name if ref is not None and ref.kind == "Pod" else ""
            members.setdefault((ns, svc), []).append((name, ready))
    out = []
    for svc in services:
        ns, name = svc.metadata.namespace or "", svc.metadata.name
        eps = members.get((ns, name), [])
        pod_names = sorted({p for p, _ in eps if p})
        workloads = sorted({owners[(ns, p)] for p in pod_names if owners.get((ns, p))})
        spec = svc.spec
        out.append(ObjectState(
            namespace=ns, kind="Service", name=name,
            extra={"type": spec.type or "", "cluster_ip": spec.cluster_ip or "", "selector": spec.selector or {},
                   "ports": [p.port for p in spec.ports or []], "pods": pod_names, "workloads": workloads,
                   "endpoints": len(eps), "ready_endpoints": sum(1 for _, r in eps if r)},
        ))
    return out
