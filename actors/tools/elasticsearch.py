"""Elasticsearch / OpenSearch log search: ``POST /<index>/_search`` with a ``query_string`` and a
time range, newest first, size-bounded (both speak the same API for this).

``integrations.elasticsearch``: ``url`` (required), ``index`` (default ``logs-*``), credentials as
``api_key`` (sent as ``Authorization: ApiKey …``), ``token`` (bearer) or ``username``/``password``,
optional ``headers`` and ``verify_ssl``, and the field names of the team's log documents (dotted
paths, nested or flat): ``timestamp_field`` (``@timestamp``), ``message_field`` (``message``),
``service_field`` (``service.name``), ``pod_field`` (``kubernetes.pod.name``), ``level_field``
(``log.level``). The block's types are checked at
config write (``config_service/integration_blocks.py``).
"""

from __future__ import annotations

import re
from typing import Any

from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, spec_builder
from actors.tools.convert import error_count, iso, logs_result, normalise_level, parse_time
from actors.tools.httpcall import base_url, config_auth, request_json
from incidentfox.evidence import LogLine

TIMEOUT_S = 25.0
MAX_SIZE = 500
FIELDS = {"timestamp_field": "@timestamp", "message_field": "message", "service_field": "service.name",
          "pod_field": "kubernetes.pod.name", "level_field": "log.level"}
# An index expression, never a path: no "/", "?", "#" or leading "_" (``_cluster``, ``_security``…).
INDEX = re.compile(r"^[A-Za-z0-9*][A-Za-z0-9._*,:+-]{0,254}$")
spec = spec_builder(category="logs", integration="elasticsearch", timeout_s=TIMEOUT_S)


def field(source: dict[str, Any], path: str) -> Any:
    """``source[path]`` for a dotted path, whether the document stores it flat or nested."""
    if path in source:
        return source[path]
    node: Any = source
    parts = path.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict):
            return None
        rest = ".".join(parts[i:])
        if rest in node:
            return node[rest]
        node = node.get(part)
    return node


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    return "" if value is None else str(value)


def lines_from_hits(hits: list[dict[str, Any]], fields: dict[str, str]) -> tuple[list[LogLine], list[dict]]:
    """``(evidence lines, data rows)`` of ``hits.hits``: entity = service, else pod, else index."""
    lines, rows = [], []
    for hit in hits:
        src = hit.get("_source") or {}
        message = _text(field(src, fields["message_field"]))[:2000]
        service, pod = _text(field(src, fields["service_field"])), _text(field(src, fields["pod_field"]))
        at = parse_time(_text(field(src, fields["timestamp_field"])) or None)
        level = normalise_level(_text(field(src, fields["level_field"])), message)
        lines.append(LogLine(entity=service or pod or str(hit.get("_index") or "unknown"), text=message,
                             level=level, at=at))
        rows.append({"timestamp": iso(at), "service": service or None, "pod": pod or None, "level": level,
                     "message": message})
    return lines, rows


async def search_logs(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    config = ctx.integration("elasticsearch")
    headers, auth = config_auth(config)
    if config.get("api_key"):
        headers["Authorization"] = f"ApiKey {config['api_key']}"
    index = args["index"] or config.get("index") or "logs-*"
    if not INDEX.match(index):
        raise ToolError("invalid_arguments", "index must be an index name or pattern (no '/', '?', '#', "
                                             "no leading '_')")
    fields = {k: str(config.get(k) or v) for k, v in FIELDS.items()}
    start, end = ctx.window(args["since_minutes"])
    size = min(args["limit"] or 100, MAX_SIZE)
    body = {
        "size": size,
        "track_total_hits": True,
        "sort": [{fields["timestamp_field"]: {"order": "desc"}}],
        "query": {"bool": {
            "must": [{"query_string": {"query": args["query"] or "*", "default_operator": "AND"}}],
            "filter": [{"range": {fields["timestamp_field"]: {
                "gte": iso(start), "lte": iso(end), "format": "strict_date_optional_time"}}}],
        }},
    }
    resp = await request_json(ctx, "POST", f"{base_url(config, service='elasticsearch')}/{index}/_search",
                              service="elasticsearch", timeout=TIMEOUT_S, headers=headers, auth=auth,
                              json_body=body, params={"ignore_unavailable": "true"},
                              verify=bool(config.get("verify_ssl", True)))
    if not isinstance(resp, dict) or not isinstance(resp.get("hits"), dict):
        raise ToolError("upstream_error", "elasticsearch returned an unexpected body")
    lines, rows = lines_from_hits(resp["hits"].get("hits") or [], fields)
    total = resp["hits"].get("total")
    total = total.get("value") if isinstance(total, dict) else total
    result = logs_result(lines, f"{len(lines)} of {total if total is not None else '?'} log lines "
                                f"({error_count(lines)} errors) from {len({ln.entity for ln in lines})} services")
    note = "; some shards timed out or failed: the answer may be partial" if (
        resp.get("timed_out") or (resp.get("_shards") or {}).get("failed")) else ""
    result.data = {"total": total, "lines": rows, "partial": bool(note)}
    result.summary += note
    return result


SPECS: list[ToolSpec] = [
    spec("elasticsearch_search_logs", search_logs,
         "Search logs in Elasticsearch or OpenSearch over a recent window, newest first, with Lucene "
         'query_string syntax, e.g. `service.name:checkout AND (error OR timeout)` or `"connection refused"`.',
         s.obj(query=s.string("query_string query (null: every line).", nullable=True),
               index=s.string("Index or pattern (null: the team's configured one, e.g. logs-*).", nullable=True,
                              max_length=255),
               since_minutes=s.SINCE_MINUTES,
               limit=s.integer("Maximum number of lines (null: 100).", nullable=True, minimum=1,
                               maximum=MAX_SIZE))),
]
