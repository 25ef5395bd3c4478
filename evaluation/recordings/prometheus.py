"""Parse a recorded Prometheus query result (HTTP API JSON, possibly wrapped) into metric series.

``data.result`` holds ``matrix`` entries (``values: [[ts, "v"], …]``) or ``vector`` entries
(``value: [ts, "v"]``). The entity comes from the series' labels (namespace plus deployment, pod,
service, job or instance); the metric family from the query text (latency, error_rate, memory…).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from actors.ranking.entities import format_entity
from incidentfox.evidence import MetricSeries

_FAMILIES = (
    ("latency", r"latenc|duration|response_time|_seconds_(bucket|sum)"),
    ("error_rate", r'5\.\.|status=~?"5|error|fail'),
    ("memory", r"memory|oom"),
    ("cpu", r"cpu"),
    ("restarts", r"restart"),
)
_ENTITY_LABELS = (("deployment", "deployment"), ("pod", "pod"), ("service", "service"),
                  ("job_name", "job"), ("statefulset", "statefulset"))


def metric_family(query: str, name: str = "") -> str:
    text = f"{query} {name}".lower()
    return next((fam for fam, pat in _FAMILIES if re.search(pat, text)), name or "value")


def _entity(labels: dict[str, str]) -> str:
    ns = labels.get("namespace", "")
    for key, kind in _ENTITY_LABELS:
        if labels.get(key):
            return format_entity(ns, kind, labels[key])
    return labels.get("instance") or labels.get("job") or labels.get("__name__", "")


def _find_data(doc: Any) -> dict[str, Any] | None:
    if isinstance(doc, dict):
        if isinstance(doc.get("result"), list) and "resultType" in doc:
            return doc
        for v in doc.values():
            found = _find_data(v)
            if found:
                return found
    return None


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def parse_prometheus(text: str, *, query: str = "") -> list[MetricSeries]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return []
    data = _find_data(doc)
    if data is None:
        return []
    query = query or str(doc.get("query", "")) if isinstance(doc, dict) else query
    out = []
    for item in data["result"]:
        if not isinstance(item, dict):
            continue
        labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
        points = item.get("values") or ([item["value"]] if "value" in item else [])
        pairs = [(_num(p[0]), _num(p[1])) for p in points if isinstance(p, list | tuple) and len(p) == 2]
        pairs = [(t, v) for t, v in pairs if not (math.isnan(t) or math.isnan(v))]
        if not pairs:
            continue
        out.append(MetricSeries(entity=_entity(labels), metric=metric_family(query, labels.get("__name__", "")),
                                timestamps=[t for t, _ in pairs], values=[v for _, v in pairs]))
    return out
