"""Kubernetes tools on the official ``kubernetes`` client.

The client is synchronous, so every call runs in ``asyncio.to_thread`` with its own
``_request_timeout`` no longer than the tool's timeout (a thread cannot be cancelled; the socket
timeout is what ends it). One ``ApiClient`` per call, built from ``integrations.kubernetes``:

* ``kubeconfig``: kubeconfig YAML text (or dict), optional ``context``; or
* ``host`` + ``token`` (bearer), optional ``verify_ssl`` (default true) and ``ca_cert`` (PEM).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from typing import Any, TypeVar

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, TransientToolError
from actors.tools.convert import detect_level, iso, k8s_entity, parse_time
from incidentfox.evidence import ChangeEvent, EvidenceBundle, K8sEvent, LogLine, ObjectState

T = TypeVar("T")
TIMEOUT_S = 20.0
_BAD_WAITING = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
}


def _api_client(config: dict[str, Any]) -> k8s.ApiClient:
    kubeconfig = config.get("kubeconfig")
    if kubeconfig:
        data = yaml.safe_load(kubeconfig) if isinstance(kubeconfig, str) else kubeconfig
        try:
            return k8s_config.new_client_from_config_dict(
                data, context=config.get("context"), persist_config=False
            )
        except (k8s_config.ConfigException, KeyError, TypeError) as exc:
            raise ToolError(
                "not_configured", f"integrations.kubernetes.kubeconfig is unusable: {type(exc).__name__}"
            ) from exc
    host = config.get("host")
    if not host:
        raise ToolError("not_configured", "integrations.kubernetes needs `kubeconfig` or `host`")
    conf = k8s.Configuration()
    conf.host = str(host).rstrip("/")
    if config.get("token"):
        conf.api_key = {"authorization": str(config["token"])}
        conf.api_key_prefix = {"authorization": "Bearer"}
    conf.verify_ssl = bool(config.get("verify_ssl", True))
    if config.get("ca_cert"):
        with tempfile.NamedTemporaryFile("w", suffix=".crt", delete=False) as fh:
            fh.write(str(config["ca_cert"]))
        conf.ssl_ca_cert = fh.name
    conf.retries = 0  # execute() owns retries; urllib3's own would multiply them
    return k8s.ApiClient(conf)


def _map_api_error(exc: ApiException) -> ToolError:
    code = exc.status or 0
    detail = f"kubernetes API returned HTTP {code}: {exc.reason}"
    if code == 429 or code >= 500:
        return TransientToolError("rate_limited" if code == 429 else "upstream_unavailable", detail)
    if code == 0:
        return TransientToolError("connection_error", detail)
    return ToolError(
        {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(code, "bad_request"), detail
    )


async def _call(ctx: ToolContext, fn: Callable[[k8s.ApiClient, tuple[float, float]], T]) -> T:
    """Run ``fn(api_client, request_timeout)`` in a thread with typed error mapping."""
    config = ctx.integration("kubernetes")
    timeout = (min(5.0, TIMEOUT_S), TIMEOUT_S)

    def run() -> T:
        with _api_client(config) as api:
            return fn(api, timeout)

    try:
        return await asyncio.to_thread(run)
    except ApiException as exc:
        raise _map_api_error(exc) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise TransientToolError("connection_error", f"kubernetes: {type(exc).__name__}") from exc


# ---- conversions (pure) -------------------------------------------------------------------------


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


# ---- tools --------------------------------------------------------------------------------------


async def list_pods(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    ns, selector, limit = args["namespace"], args["label_selector"], args["limit"] or 200

    def call(api: k8s.ApiClient, t: tuple[float, float]) -> Any:
        core = k8s.CoreV1Api(api)
        kw = {"label_selector": selector or "", "limit": limit, "_request_timeout": t}
        return core.list_namespaced_pod(ns, **kw) if ns else core.list_pod_for_all_namespaces(**kw)

    pods = (await _call(ctx, call)).items
    states = [pod_state(p) for p in pods]
    bad = [p for p in states if p.reasons or p.status not in ("Running", "Succeeded")]
    data = [
        {
            "namespace": p.namespace,
            "name": p.name,
            "status": p.status,
            "ready": p.ready,
            "restarts": p.restarts,
            "reasons": p.reasons,
            "owner": p.owner,
            "image": p.image,
        }
        for p in states
    ]
    return ToolResult.success(
        data,
        evidence=EvidenceBundle(objects=states),
        summary=f"{len(states)} pods, {len(bad)} unhealthy"
        + (f": {', '.join(f'{p.name} {p.reasons}' for p in bad[:5])}" if bad else ""),
    )


async def get_events(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    ns, name, warnings = args["namespace"], args["object_name"], bool(args["warnings_only"])
    start, _ = ctx.window(args["since_minutes"])
    fields = [
        f for f in (f"involvedObject.name={name}" if name else "", "type=Warning" if warnings else "") if f
    ]

    def call(api: k8s.ApiClient, t: tuple[float, float]) -> Any:
        core = k8s.CoreV1Api(api)
        kw = {"field_selector": ",".join(fields), "limit": 500, "_request_timeout": t}
        return core.list_namespaced_event(ns, **kw) if ns else core.list_event_for_all_namespaces(**kw)

    events = [event_of(e) for e in (await _call(ctx, call)).items]
    events = [e for e in events if e.at is None or e.at >= start]
    events.sort(key=lambda e: e.at.timestamp() if e.at else 0.0, reverse=True)
    events = events[: args["limit"] or 100]
    data = [
        {
            "at": iso(e.at),
            "type": e.type,
            "reason": e.reason,
            "object": f"{e.kind}/{e.name}",
            "namespace": e.namespace,
            "count": e.count,
            "message": e.message,
        }
        for e in events
    ]
    warn = sum(1 for e in events if e.type == "Warning")
    return ToolResult.success(
        data, evidence=EvidenceBundle(events=events), summary=f"{len(events)} events ({warn} warnings)"
    )


async def get_pod_logs(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    ns, pod = args["namespace"], args["pod"]
    since = args["since_minutes"]

    def call(api: k8s.ApiClient, t: tuple[float, float]) -> str:
        kw: dict[str, Any] = {
            "tail_lines": args["tail_lines"] or 200,
            "timestamps": True,
            "previous": bool(args["previous"]),
            "_request_timeout": t,
        }
        if args["container"]:
            kw["container"] = args["container"]
        if since:
            kw["since_seconds"] = since * 60
        return k8s.CoreV1Api(api).read_namespaced_pod_log(pod, ns, **kw)

    text = await _call(ctx, call)
    entity = k8s_entity(ns, "pod", pod)
    lines: list[LogLine] = []
    for raw in (text or "").splitlines():
        stamp, _, rest = raw.partition(" ")
        at = parse_time(stamp)
        body = rest if at else raw
        lines.append(LogLine(entity=entity, text=body[:2000], level=detect_level(body), at=at))
    errors = sum(1 for ln in lines if ln.level in ("error", "fatal"))
    data = [{"at": iso(ln.at), "level": ln.level, "text": ln.text} for ln in lines]
    return ToolResult.success(
        data,
        evidence=EvidenceBundle(logs=lines),
        summary=f"{len(lines)} log lines from {pod}, {errors} errors",
    )


async def list_deployments(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    ns, selector = args["namespace"], args["label_selector"]

    def call(api: k8s.ApiClient, t: tuple[float, float]) -> Any:
        apps = k8s.AppsV1Api(api)
        kw = {"label_selector": selector or "", "_request_timeout": t}
        return (
            apps.list_namespaced_deployment(ns, **kw) if ns else apps.list_deployment_for_all_namespaces(**kw)
        )

    states = [deployment_state(d) for d in (await _call(ctx, call)).items]
    data = [
        {
            "namespace": d.namespace,
            "name": d.name,
            "status": d.status,
            "ready": d.ready,
            "image": d.image,
            "revision": d.extra.get("revision"),
            "reasons": d.reasons,
        }
        for d in states
    ]
    degraded = [d.name for d in states if d.status != "Available" or d.reasons]
    return ToolResult.success(
        data,
        evidence=EvidenceBundle(objects=states),
        summary=f"{len(states)} deployments"
        + (f", degraded: {', '.join(degraded)}" if degraded else ", all available"),
    )


async def rollout_history(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    ns, dep = args["namespace"], args["deployment"]

    def call(api: k8s.ApiClient, t: tuple[float, float]) -> Any:
        apps = k8s.AppsV1Api(api)
        return (
            apps.list_namespaced_replica_set(ns, _request_timeout=t)
            if ns
            else apps.list_replica_set_for_all_namespaces(_request_timeout=t)
        )

    changes = rollout_changes((await _call(ctx, call)).items, dep)[: args["limit"] or 50]
    if dep and not changes:
        raise ToolError("not_found", f"no rollout history for deployment {dep!r}")
    data = [
        {"deployment": c.entity, "at": iso(c.at), "revision": c.ref, "description": c.description}
        for c in changes
    ]
    latest = f"; latest: {changes[0].description} at {iso(changes[0].at)}" if changes else ""
    return ToolResult.success(
        data, evidence=EvidenceBundle(changes=changes), summary=f"{len(changes)} rollouts{latest}"
    )


async def list_nodes(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    def call(api: k8s.ApiClient, t: tuple[float, float]) -> Any:
        return k8s.CoreV1Api(api).list_node(label_selector=args["label_selector"] or "", _request_timeout=t)

    states = [node_state(n) for n in (await _call(ctx, call)).items]
    data = [{"name": n.name, "status": n.status, "reasons": n.reasons} for n in states]
    bad = [n.name for n in states if n.status != "Ready" or n.reasons]
    return ToolResult.success(
        data,
        evidence=EvidenceBundle(objects=states),
        summary=f"{len(states)} nodes" + (f", unhealthy: {', '.join(bad)}" if bad else ", all Ready"),
    )


async def restart_deployment(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    ns, dep = args["namespace"], args["deployment"]
    at = iso(ctx.now())
    body = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}}

    def call(api: k8s.ApiClient, t: tuple[float, float]) -> Any:
        return k8s.AppsV1Api(api).patch_namespaced_deployment(dep, ns, body, _request_timeout=t)

    await _call(ctx, call)
    return ToolResult.success(
        {"deployment": f"{ns}/{dep}", "restarted_at": at},
        evidence=EvidenceBundle(notes=[f"rollout restart of {ns}/{dep} requested at {at}"]),
        summary=f"restarted deployment {ns}/{dep}",
    )


async def scale_deployment(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    ns, dep, replicas = args["namespace"], args["deployment"], args["replicas"]

    def call(api: k8s.ApiClient, t: tuple[float, float]) -> Any:
        return k8s.AppsV1Api(api).patch_namespaced_deployment_scale(
            dep, ns, {"spec": {"replicas": replicas}}, _request_timeout=t
        )

    scale = await _call(ctx, call)
    return ToolResult.success(
        {"deployment": f"{ns}/{dep}", "replicas": scale.spec.replicas},
        evidence=EvidenceBundle(notes=[f"scaled {ns}/{dep} to {replicas} replicas"]),
        summary=f"scaled deployment {ns}/{dep} to {replicas}",
    )


_NS = s.string("Namespace; null means all namespaces.", nullable=True, max_length=253)
_NS_REQUIRED = s.string("Namespace of the object.", max_length=253)
_SELECTOR = s.string("Label selector, e.g. `app=checkout` (null: no filter).", nullable=True)


def _spec(
    name: str, fn: Any, description: str, params: dict[str, Any], category: str = "kubernetes", **kw: Any
) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=description,
        parameters=params,
        category=category,
        integration="kubernetes",
        fn=fn,
        timeout_s=TIMEOUT_S,
        **kw,
    )


SPECS: list[ToolSpec] = [
    _spec(
        "kubernetes_list_pods",
        list_pods,
        "List pods with phase, readiness, restart count and problem reasons (CrashLoopBackOff, OOMKilled, "
        "ImagePullBackOff…). Start here to see which workloads are unhealthy.",
        s.obj(namespace=_NS, label_selector=_SELECTOR, limit=s.LIMIT),
    ),
    _spec(
        "kubernetes_get_events",
        get_events,
        "List recent Kubernetes events (scheduling failures, probe failures, kills, image pulls, scaling), "
        "newest first. Filter to one object's name or to warnings.",
        s.obj(
            namespace=_NS,
            object_name=s.string("Only events about this object name.", nullable=True),
            warnings_only=s.boolean("Only Warning events (null: false).", nullable=True),
            since_minutes=s.SINCE_MINUTES,
            limit=s.LIMIT,
        ),
    ),
    _spec(
        "kubernetes_get_pod_logs",
        get_pod_logs,
        "Read the last lines of one pod's container logs; set previous=true to read the crashed "
        "container's logs before its last restart.",
        s.obj(
            namespace=_NS_REQUIRED,
            pod=s.string("Pod name.", max_length=253),
            container=s.string("Container name (null: the only/first container).", nullable=True),
            tail_lines=s.integer("Lines from the end (null: 200).", nullable=True, minimum=1, maximum=5000),
            previous=s.boolean("Logs of the previous, terminated container (null: false).", nullable=True),
            since_minutes=s.SINCE_MINUTES,
        ),
    ),
    _spec(
        "kubernetes_list_deployments",
        list_deployments,
        "List deployments with ready/desired replicas, availability, current image and revision.",
        s.obj(namespace=_NS, label_selector=_SELECTOR),
    ),
    _spec(
        "kubernetes_rollout_history",
        rollout_history,
        "Show a deployment's rollout history (one entry per ReplicaSet revision with its image and "
        "creation time), newest first. Use it to find what was deployed shortly before an incident.",
        s.obj(
            namespace=_NS,
            deployment=s.string("Deployment name (null: every deployment).", nullable=True),
            limit=s.LIMIT,
        ),
        category="changes",
    ),
    _spec(
        "kubernetes_list_nodes",
        list_nodes,
        "List cluster nodes with readiness and pressure conditions (MemoryPressure, DiskPressure…).",
        s.obj(label_selector=_SELECTOR),
    ),
    _spec(
        "kubernetes_restart_deployment",
        restart_deployment,
        "Restart a deployment's pods with a rolling restart (like `kubectl rollout restart`). "
        "Changes the cluster: runs only after a human approves it.",
        s.obj(namespace=_NS_REQUIRED, deployment=s.string("Deployment name.", max_length=253)),
        mutating=True,
        retries=0,
    ),
    _spec(
        "kubernetes_scale_deployment",
        scale_deployment,
        "Set a deployment's replica count. Changes the cluster: runs only after a human approves it.",
        s.obj(
            namespace=_NS_REQUIRED,
            deployment=s.string("Deployment name.", max_length=253),
            replicas=s.integer("Desired replicas.", minimum=0, maximum=200),
        ),
        mutating=True,
        retries=0,
    ),
]
