"""Kubernetes tools on the official ``kubernetes`` client.

The client is synchronous, so every call runs in ``asyncio.to_thread`` with its own
``_request_timeout`` no longer than the tool's timeout (a thread cannot be cancelled; the socket
timeout is what ends it). One ``ApiClient`` per call, built from ``integrations.kubernetes``:

* ``kubeconfig``: kubeconfig YAML text (or object) holding only a cluster ``server`` (https) and
  ``certificate-authority-data``, a user ``token`` or ``client-certificate-data`` +
  ``client-key-data``, and contexts; optional ``context`` beside it; or
* ``host`` (https) + ``token`` (bearer), optional ``ca_cert`` (PEM).

Anything that would run a command or read a file on the tool host (``exec``, ``auth-provider``,
``tokenFile``, file paths) or turn TLS verification off is refused, here and at config write
(:mod:`incidentfox.kubeconfig`, docs/security.md). The client is configured field by field from the
validated credentials, never by the client's kubeconfig loader; certificate data the client wants
as files lives in a private temporary directory removed when the call ends.

The API server is tenant egress, checked and pinned before each call
(:mod:`actors.tools.kubernetes_egress`; a refusal is ``egress_refused``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, TransientToolError, spec_builder
from actors.tools.convert import (
    detect_level,
    error_count,
    events_result,
    iso,
    k8s_entity,
    logs_result,
    parse_time,
)
from actors.tools.kubernetes_egress import pin_to_checked_address
from actors.tools.kubernetes_state import (
    deployment_state,
    event_of,
    node_state,
    pod_state,
    rollout_changes,
)
from incidentfox.evidence import EvidenceBundle, LogLine
from incidentfox.kubeconfig import KubeconfigError, KubeCredentials, kubernetes_credentials

T = TypeVar("T")
TIMEOUT_S = 20.0
TEMP_PREFIX = "ifx-k8s-"


def preload() -> None:
    """Import the client's API classes now. ``kubernetes`` builds them lazily on first use, which
    takes seconds of CPU; a worker that serves Kubernetes teams can call this (in a thread) at start."""
    _ = (k8s.CoreV1Api, k8s.AppsV1Api)


def credentials(config: Any) -> KubeCredentials:
    """The validated credentials of ``integrations.kubernetes``, or ``not_configured``."""
    try:
        return kubernetes_credentials(config)
    except KubeconfigError as exc:
        where = "integrations.kubernetes" + (f".{exc.path}" if exc.path else "")
        raise ToolError("not_configured", f"{where}: {exc.message}") from None


def _write_private(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


@contextmanager
def api_client(creds: KubeCredentials) -> Iterator[k8s.ApiClient]:
    """An ``ApiClient`` for ``creds``, set explicitly; its certificate files are removed on exit.

    urllib3 reads the CA and client-certificate files when it opens a connection, so they live in a
    0700 directory for the duration of the call (the ``with`` block), and nowhere else.
    """
    conf = k8s.Configuration()
    conf.host = creds.server
    conf.verify_ssl = True
    conf.retries = 0  # execute() owns retries; urllib3's own would multiply them
    if creds.token:
        conf.api_key = {"authorization": creds.token}
        conf.api_key_prefix = {"authorization": "Bearer"}
    files = {"ca.crt": creds.ca_pem, "client.crt": creds.client_cert_pem, "client.key": creds.client_key_pem}
    workdir = tempfile.mkdtemp(prefix=TEMP_PREFIX) if any(files.values()) else None
    try:
        if workdir is not None:
            if creds.ca_pem:
                conf.ssl_ca_cert = _write_private(workdir, "ca.crt", creds.ca_pem)
            if creds.client_cert_pem and creds.client_key_pem:
                conf.cert_file = _write_private(workdir, "client.crt", creds.client_cert_pem)
                conf.key_file = _write_private(workdir, "client.key", creds.client_key_pem)
        with k8s.ApiClient(conf) as api:
            yield api
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


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
    creds = credentials(ctx.integration("kubernetes"))
    timeout = (min(5.0, TIMEOUT_S), TIMEOUT_S)
    try:
        # The client is built from validated credentials only (certificate files live for this call),
        # then pointed at the egress-checked address of the API server.
        with api_client(creds) as api:
            await pin_to_checked_address(ctx, api)
            return await asyncio.to_thread(fn, api, timeout)
    except ApiException as exc:
        raise _map_api_error(exc) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise TransientToolError("connection_error", f"kubernetes: {type(exc).__name__}") from exc


api_call = _call  # what other Kubernetes tool modules (kubernetes_services) call through


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
    return events_result(events)


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
    summary = f"{len(lines)} log lines from {pod}, {error_count(lines)} errors"
    return logs_result(lines, summary, service=False)


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


_spec = spec_builder(category="kubernetes", integration="kubernetes", timeout_s=TIMEOUT_S)


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
