"""Grafana HTTP API tools: firing alerts (Grafana-managed, Prometheus-compatible endpoint) and
annotations (deploy markers and other changes).

``integrations.grafana``: ``url`` (required), ``token`` (service-account token) or
``username``/``password``, optional ``org_id`` (``X-Grafana-Org-Id``) and ``verify_ssl``.
"""

from __future__ import annotations

from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec
from actors.tools.convert import iso, parse_time, service_from_labels
from actors.tools.httpcall import base_url, bearer, request_json
from incidentfox.evidence import ChangeEvent, EvidenceBundle

TIMEOUT_S = 15.0
_CHANGE_TAGS = {"deploy", "deployment", "release", "rollout", "config", "change"}


async def _get(ctx: ToolContext, path: str, params: Any) -> Any:
    config = ctx.integration("grafana")
    headers = bearer(config.get("token"))
    if config.get("org_id"):
        headers["X-Grafana-Org-Id"] = str(config["org_id"])
    auth = (config["username"], config.get("password", "")) if config.get("username") else None
    return await request_json(
        ctx,
        "GET",
        f"{base_url(config, service='grafana')}{path}",
        service="grafana",
        timeout=TIMEOUT_S,
        headers=headers,
        params=params,
        auth=auth,
        verify=bool(config.get("verify_ssl", True)),
    )


async def firing_alerts(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    body = await _get(ctx, "/api/prometheus/grafana/api/v1/alerts", None)
    if not isinstance(body, dict) or body.get("status") != "success":
        raise ToolError("upstream_error", "grafana returned an unexpected alerts body")
    alerts = []
    for a in body.get("data", {}).get("alerts") or []:
        state = str(a.get("state", ""))
        if args["include_pending"] is not True and state.lower() not in ("alerting", "firing"):
            continue
        labels = a.get("labels") or {}
        alerts.append(
            {
                "name": labels.get("alertname", ""),
                "state": state,
                "service": service_from_labels(labels),
                "since": iso(parse_time(a.get("activeAt"))),
                "value": a.get("value"),
                "summary": str((a.get("annotations") or {}).get("summary", ""))[:500],
                "labels": labels,
            }
        )
    notes = [
        f"Grafana alert {x['name']!r} {x['state']} on {x['service'] or '?'} since {x['since']}"
        for x in alerts
    ]
    return ToolResult.success(
        alerts,
        evidence=EvidenceBundle(notes=notes[:20]),
        summary=f"{len(alerts)} alerts firing"
        + (f": {', '.join(x['name'] for x in alerts[:5])}" if alerts else ""),
    )


def annotation_change(a: dict[str, Any]) -> ChangeEvent:
    tags = [str(t) for t in a.get("tags") or []]
    entity = next(
        (t.split(":", 1)[1] for t in tags if t.split(":", 1)[0] in ("service", "app") and ":" in t), ""
    )
    entity = entity or next((t for t in tags if t.lower() not in _CHANGE_TAGS and ":" not in t), "grafana")
    text = str(a.get("text", ""))
    lowered = " ".join([*tags, text]).lower()
    kind = (
        "deploy"
        if any(w in lowered for w in ("deploy", "release", "rollout"))
        else ("rollback" if "rollback" in lowered else "config")
    )
    return ChangeEvent(
        entity=entity,
        kind=kind,
        description=text[:300],
        at=parse_time(a.get("time")),
        author=str(a.get("login") or a.get("email") or ""),
        ref=f"annotation {a.get('id', '')}",
    )


async def annotations(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    start, end = ctx.window(args["since_minutes"], default=24 * 60)
    params: list[tuple[str, Any]] = [
        ("from", int(start.timestamp() * 1000)),
        ("to", int(end.timestamp() * 1000)),
        ("limit", args["limit"] or 100),
    ]
    params += [("tags", t) for t in args["tags"] or []]
    items = await _get(ctx, "/api/annotations", params)
    changes = sorted(
        (annotation_change(a) for a in items), key=lambda c: c.at.timestamp() if c.at else 0.0, reverse=True
    )
    data = [{"service": c.entity, "kind": c.kind, "at": iso(c.at), "text": c.description} for c in changes]
    return ToolResult.success(
        data,
        evidence=EvidenceBundle(changes=changes),
        summary=f"{len(changes)} annotations"
        + (f"; latest: {changes[0].entity} {changes[0].description[:80]}" if changes else ""),
    )


SPECS: list[ToolSpec] = [
    ToolSpec(
        name="grafana_firing_alerts",
        category="observability",
        integration="grafana",
        fn=firing_alerts,
        timeout_s=TIMEOUT_S,
        description="List Grafana-managed alerts that are currently firing, with labels and since when.",
        parameters=s.obj(include_pending=s.boolean("Also list pending alerts (null: false).", nullable=True)),
    ),
    ToolSpec(
        name="grafana_annotations",
        category="changes",
        integration="grafana",
        fn=annotations,
        timeout_s=TIMEOUT_S,
        description="List Grafana annotations (deploy markers, config changes, incidents) in a recent "
        "window, newest first. Filter by tags such as `deploy`.",
        parameters=s.obj(
            tags=s.array(
                s.string("Tag.", max_length=100),
                "Only annotations with all these tags (null: any).",
                nullable=True,
                max_items=10,
            ),
            since_minutes=s.integer(
                "How far back, in minutes (null: 1440).", nullable=True, minimum=1, maximum=30 * 24 * 60
            ),
            limit=s.LIMIT,
        ),
    ),
]
