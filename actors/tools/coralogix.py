"""Coralogix tool: DataPrime log queries (``POST /api/v1/dataprime/query``, NDJSON response).

``integrations.coralogix``: ``api_key`` (required) and ``domain`` (e.g. ``eu2.coralogix.com``; the API
is ``https://api.<domain>``) or ``api_url`` (overrides it; tests use a local server).
"""

from __future__ import annotations

import json
from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec
from actors.tools.convert import error_count, iso, logs_result, normalise_level, parse_time
from actors.tools.httpcall import bearer, request
from incidentfox.evidence import LogLine

TIMEOUT_S = 30.0


def _kv(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {str(i.get("key")): i.get("value") for i in items or []}


def lines_from_ndjson(text: str) -> list[LogLine]:
    """Parse the NDJSON stream: ``{"queryId":…}``, ``{"result":{"results":[…]}}``, ``{"error":…}``."""
    lines: list[LogLine] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        try:
            msg = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ToolError("upstream_error", "coralogix returned a malformed NDJSON line") from exc
        if "error" in msg:
            raise ToolError("bad_request", f"coralogix: {str(msg['error'])[:300]}")
        for r in (msg.get("result") or {}).get("results") or []:
            meta, labels = _kv(r.get("metadata")), _kv(r.get("labels"))
            user = r.get("userData", "")
            try:
                parsed = json.loads(user) if isinstance(user, str) else user
            except json.JSONDecodeError:
                parsed = user
            if isinstance(parsed, dict):
                text = str(
                    parsed.get("message") or parsed.get("msg") or parsed.get("log") or json.dumps(parsed)
                )
            else:
                text = str(parsed)
            entity = labels.get("subsystemname") or labels.get("applicationname") or "unknown"
            lines.append(
                LogLine(
                    entity=str(entity),
                    text=text[:2000],
                    level=normalise_level(meta.get("severity"), text),
                    at=parse_time(meta.get("timestamp")),
                )
            )
    return lines


async def query_logs(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    config = ctx.integration("coralogix")
    if not config.get("api_key"):
        raise ToolError("not_configured", "integrations.coralogix.api_key is not set")
    url = config.get("api_url") or (f"https://api.{config['domain']}" if config.get("domain") else None)
    if not url:
        raise ToolError("not_configured", "integrations.coralogix needs domain or api_url")
    start, end = ctx.window(args["since_minutes"])
    payload = {
        "query": args["query"],
        "metadata": {
            "tier": "TIER_FREQUENT_SEARCH",
            "syntax": "QUERY_SYNTAX_DATAPRIME",
            "startDate": iso(start),
            "endDate": iso(end),
            "limit": args["limit"] or 100,
        },
    }
    resp = await request(
        ctx,
        "POST",
        f"{url.rstrip('/')}/api/v1/dataprime/query",
        service="coralogix",
        timeout=TIMEOUT_S,
        headers=bearer(config["api_key"]),
        json_body=payload,
    )
    lines = lines_from_ndjson(resp.text)
    lines.sort(key=lambda ln: ln.at.timestamp() if ln.at else 0.0, reverse=True)
    return logs_result(lines, f"{len(lines)} log lines ({error_count(lines)} errors)")


SPECS: list[ToolSpec] = [
    ToolSpec(
        name="coralogix_query_logs",
        category="logs",
        integration="coralogix",
        fn=query_logs,
        timeout_s=TIMEOUT_S,
        description="Query Coralogix logs with DataPrime over a recent window, e.g. "
        "`source logs | filter $l.subsystemname == 'checkout' && $m.severity == ERROR`.",
        parameters=s.obj(query=s.string("DataPrime query."), since_minutes=s.SINCE_MINUTES, limit=s.LIMIT),
    ),
]
