"""Argo CD tool: GitOps applications and whether they are synced and healthy (``GET /api/v1/applications``).

``integrations.argocd``: ``url`` (the Argo CD server, e.g. ``https://argocd.example.com``; required),
``token`` (an API token, sent as a bearer; read-only role ``role:readonly`` suffices), optional
``headers`` and ``verify_ssl``.

Each application becomes an ``Application`` :class:`ObjectState` in the namespace Argo CD keeps it
in (:func:`application_state`, pure): ``status`` the sync status (``Synced``, ``OutOfSync``),
``reasons`` what is wrong (``SyncFailed`` for a failed last sync operation, the health status when
not ``Healthy``: ``Degraded``, ``Missing``…, and condition types such as ``ComparisonError``),
``message`` the failed operation's or condition's message ("namespaces \\"x\\" not found"), and
``extra["resources"]`` the managed resources that are out of sync or unhealthy, each with its
own message.
"""

from __future__ import annotations

from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, spec_builder
from actors.tools.httpcall import base_url, config_auth, request_json
from incidentfox.evidence import EvidenceBundle, ObjectState

TIMEOUT_S = 20.0
FAILED_PHASES = frozenset({"Failed", "Error"})
spec = spec_builder(category="changes", integration="argocd", timeout_s=TIMEOUT_S)


def _problem_resources(resources: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for r in resources or []:
        health = (r.get("health") or {}) if isinstance(r.get("health"), dict) else {}
        if r.get("status") not in (None, "", "Synced") or health.get("status") not in (None, "", "Healthy"):
            out.append({"kind": str(r.get("kind") or ""), "namespace": str(r.get("namespace") or ""),
                        "name": str(r.get("name") or ""), "status": str(r.get("status") or ""),
                        "health": str(health.get("status") or ""),
                        "message": str(health.get("message") or r.get("message") or "")[:300]})
    return out


def application_state(app: dict[str, Any]) -> ObjectState:
    """An Argo CD ``Application`` (the API's JSON) as evidence."""
    meta, status = app.get("metadata") or {}, app.get("status") or {}
    sync, health, op = status.get("sync") or {}, status.get("health") or {}, status.get("operationState") or {}
    reasons: list[str] = []
    messages: list[str] = []
    if op.get("phase") in FAILED_PHASES:
        reasons.append("SyncFailed")
        messages.append(str(op.get("message") or ""))
    if health.get("status") not in (None, "", "Healthy", "Progressing"):
        reasons.append(str(health["status"]))
        messages.append(str(health.get("message") or ""))
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type", "").endswith("Error"):
            reasons.append(str(cond["type"]))
            messages.append(str(cond.get("message") or ""))
    return ObjectState(
        namespace=str(meta.get("namespace") or ""), kind="Application", name=str(meta.get("name") or ""),
        status=str(sync.get("status") or ""), reasons=list(dict.fromkeys(reasons)),
        message="; ".join(m for m in dict.fromkeys(messages) if m)[:500],
        extra={"health": str(health.get("status") or ""), "revision": str(sync.get("revision") or ""),
               "operation": str(op.get("phase") or ""), "finished_at": op.get("finishedAt"),
               "resources": _problem_resources(status.get("resources") or [])},
    )


async def list_applications(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    config = ctx.integration("argocd")
    headers, auth = config_auth(config)
    params = {"name": args["name"]} if args.get("name") else None
    body = await request_json(ctx, "GET", f"{base_url(config, service='argocd')}/api/v1/applications",
                              service="argocd", timeout=TIMEOUT_S, params=params, auth=auth,
                              headers={"Accept": "application/json", **headers},
                              verify=bool(config.get("verify_ssl", True)))
    if not isinstance(body, dict) or not isinstance(body.get("items") or [], list):
        raise ToolError("upstream_error", "argocd returned an unexpected body for /api/v1/applications")
    states = [application_state(a) for a in body.get("items") or [] if isinstance(a, dict)]
    data = [{"namespace": o.namespace, "name": o.name, "sync": o.status, "health": o.extra["health"],
             "problems": o.reasons, "message": o.message, "resources": o.extra["resources"]} for o in states]
    bad = [o for o in states if o.reasons]
    return ToolResult.success(
        data, evidence=EvidenceBundle(objects=states),
        summary=f"{len(states)} Argo CD applications, {len(bad)} with problems"
        + (": " + "; ".join(f"{o.name} ({', '.join(o.reasons)})" for o in bad[:5]) if bad else ""))


SPECS: list[ToolSpec] = [
    spec("argocd_list_applications", list_applications,
         "List Argo CD applications with their sync status (Synced, OutOfSync), health (Healthy, Degraded, "
         "Missing…), a failed last sync and its message (e.g. a namespace that does not exist), and the "
         "managed resources that are out of sync or unhealthy.",
         s.obj(name=s.string("Only the application of this name (null: every application).", nullable=True,
                             max_length=253))),
]
