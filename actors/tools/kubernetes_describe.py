"""``kubernetes_describe_pod``: one pod as ``kubectl describe`` shows it, read-only.

Two calls through :func:`actors.tools.kubernetes_tools.api_call` (same credentials, egress check and
error mapping): read the pod, list the events about it. The result is one ``Pod``
:class:`ObjectState` (as :func:`actors.tools.kubernetes_state.pod_state` builds it) whose
``extra["containers"]`` holds, per container (init containers first): its requests and limits, its
state and reason, its *last* state (``Terminated`` with ``OOMKilled``, exit code 137…), restart count
and command; ``extra["conditions"]`` the pod's conditions; and the recent events as
:class:`K8sEvent` evidence. The container entries use the keys the ranker reads
(:mod:`actors.ranking.k8s_state`: ``reason``, ``last_reason``, ``exit_code``, ``limits``), so an OOM
kill is quoted with the memory limit it hit. Needs ``get`` on ``pods`` and ``list`` on ``events``.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolResult, ToolSpec, spec_builder
from actors.tools.convert import iso
from actors.tools.kubernetes_state import event_of, pod_state
from actors.tools.kubernetes_tools import TIMEOUT_S, api_call
from incidentfox.evidence import EvidenceBundle, K8sEvent, ObjectState

MAX_EVENTS = 50


def _state(st: Any) -> tuple[str, str, str, str]:
    """(state, reason, message, exit code) of a ``V1ContainerState``."""
    if st is None:
        return "", "", "", ""
    if st.waiting is not None:
        return "Waiting", st.waiting.reason or "", st.waiting.message or "", ""
    if st.terminated is not None:
        t = st.terminated
        return "Terminated", t.reason or "", t.message or "", "" if t.exit_code is None else str(t.exit_code)
    if st.running is not None:
        return "Running", "", "", ""
    return "", "", "", ""


def _quantities(values: dict[str, Any] | None) -> dict[str, str]:
    return {k: str(v) for k, v in (values or {}).items()}


def container_details(spec: Any, status: Any | None, *, init: bool = False) -> dict[str, Any]:
    """One container's spec and status in the ranker's shape (see the module docstring)."""
    res = spec.resources
    state, reason, message, _ = _state(status.state if status else None)
    last, last_reason, last_message, exit_code = _state(status.last_state if status else None)
    return {"name": spec.name, "init": init, "image": spec.image or "",
            "requests": _quantities(res.requests if res else None), "limits": _quantities(res.limits if res else None),
            "state": state, "reason": reason, "message": message[:500],
            "last_state": last, "last_reason": last_reason, "last_message": last_message[:500],
            "exit_code": exit_code, "restarts": (status.restart_count or 0) if status else 0,
            "ready": bool(status.ready) if status else False,
            "command": [*(spec.command or []), *(spec.args or [])]}


def describe_state(pod: Any) -> ObjectState:
    """The pod's :class:`ObjectState` with its containers' details and its conditions."""
    base = pod_state(pod)
    st = pod.status
    statuses = {c.name: c for c in [*(st.init_container_statuses or []), *(st.container_statuses or [])]}
    containers = [container_details(c, statuses.get(c.name), init=True) for c in pod.spec.init_containers or []]
    containers += [container_details(c, statuses.get(c.name)) for c in pod.spec.containers or []]
    conditions = [{"type": c.type, "status": c.status, "reason": c.reason or "", "message": (c.message or "")[:300]}
                  for c in st.conditions or []]
    return base.model_copy(update={"extra": {**base.extra, "containers": containers, "conditions": conditions,
                                             "qos_class": st.qos_class or ""}})


def _line(c: dict[str, Any]) -> str:
    lim = ", ".join(f"{k}={v}" for k, v in c["limits"].items()) or "no limits"
    last = f", last {c['last_reason']}" + (f" (exit {c['exit_code']})" if c["exit_code"] else "") \
        if c["last_reason"] else ""
    return f"{c['name']}: {c['state'] or '?'}{' ' + c['reason'] if c['reason'] else ''}{last}, " \
           f"{c['restarts']} restarts, {lim}"


async def describe_pod(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    ns, name = args["namespace"], args["pod"]
    start, _ = ctx.window(args["since_minutes"])

    def fetch(api: k8s.ApiClient, t: tuple[float, float]) -> tuple[Any, Any]:
        core = k8s.CoreV1Api(api)
        return (core.read_namespaced_pod(name, ns, _request_timeout=t),
                core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name}", limit=500,
                                           _request_timeout=t))

    pod, events = await api_call(ctx, fetch)
    evs = [e for e in (event_of(e) for e in events.items) if e.at is None or e.at >= start]
    return describe_result(describe_state(pod), evs)


def describe_result(state: ObjectState, events: list[K8sEvent]) -> ToolResult:
    """The tool's answer for a described pod: ``state`` as :func:`describe_state` builds it (extra
    ``containers``, ``conditions``, ``qos_class``, ``node``) and its events, newest first (undated
    last), at most :data:`MAX_EVENTS`. Pure: the live call and a replayed ``kubectl describe pod``
    recording (:mod:`evaluation.recordings.kubectl`) answer through it alike."""
    evs = sorted(events, key=lambda e: e.at.timestamp() if e.at else 0.0, reverse=True)[:MAX_EVENTS]
    data = {"namespace": state.namespace, "name": state.name, "status": state.status, "ready": state.ready,
            "node": state.extra.get("node"), "qos_class": state.extra.get("qos_class", ""), "owner": state.owner,
            "containers": state.extra.get("containers", []), "conditions": state.extra.get("conditions", []),
            "events": [{"type": e.type, "reason": e.reason, "message": e.message, "count": e.count,
                        "at": iso(e.at)} for e in evs]}
    warnings = [e for e in evs if e.type == "Warning"]
    return ToolResult.success(
        data, evidence=EvidenceBundle(objects=[state], events=evs),
        summary=f"pod {state.namespace}/{state.name} {state.status} ({state.ready} ready); "
                + "; ".join(_line(c) for c in data["containers"])
                + (f"; {len(warnings)} warning events: {', '.join(dict.fromkeys(e.reason for e in warnings))}"
                   if warnings else ""),
    )


_spec = spec_builder(category="kubernetes", integration="kubernetes", timeout_s=TIMEOUT_S)

SPECS: list[ToolSpec] = [
    _spec(
        "kubernetes_describe_pod",
        describe_pod,
        "Describe one pod like `kubectl describe pod`: each container's CPU/memory requests and limits, "
        "state, last state (e.g. Terminated/OOMKilled with its exit code), restart count and command, the "
        "pod's conditions and its recent events. Use it to compare an OOM kill with the memory limit or "
        "to see why a container keeps restarting.",
        s.obj(
            namespace=s.string("Namespace of the pod.", max_length=253),
            pod=s.string("Pod name.", max_length=253),
            since_minutes=s.SINCE_MINUTES,
        ),
    ),
]
