"""Parse a recorded trace tree (Tempo/Grafana text rendering) into :class:`TraceSpan` s.

Each span is one ``├─ <name> (<service>) - <ms>ms (span_id=<id>)`` line; its depth is the column of
``├─`` (two columns per level) and its parent the last span one level up. Indented lines under it
hold ``Datetime: start=… end=…``, ``Resource labels: k='v' …`` and an ``Attributes:`` block of
``key: value`` lines.
"""

from __future__ import annotations

import re

from actors.ranking.entities import format_entity
from incidentfox.evidence import TraceSpan
from incidentfox.timeparse import parse_time

_SPAN = re.compile(r"├─ (?P<name>.+?) \((?P<service>[^()]+)\) - (?P<ms>[\d.]+)ms \(span_id=(?P<id>\w+)\)")
_LABEL = re.compile(r"([\w.]+)='([^']*)'")
_START = re.compile(r"start=(\S+)")


def parse_trace_tree(text: str, *, trace_id: str) -> list[TraceSpan]:
    """All spans of one rendered trace, parents linked by depth."""
    spans: list[TraceSpan] = []
    parents: dict[int, str] = {}
    current: TraceSpan | None = None
    in_attrs = False
    for line in text.splitlines():
        m = _SPAN.search(line)
        if m:
            depth = line.index("├─") // 2
            labels: dict[str, str] = {}
            current = TraceSpan(trace_id=trace_id, span_id=m["id"], parent_id=parents.get(depth - 1, ""),
                                entity=m["service"].strip(), name=m["name"].strip(),
                                duration_ms=float(m["ms"]), attributes=labels)
            parents[depth] = m["id"]
            for d in [d for d in parents if d > depth]:
                del parents[d]
            spans.append(current)
            in_attrs = False
            continue
        if current is None:
            continue
        body = line.replace("│", " ").strip()
        if body.startswith("Datetime:"):
            s = _START.search(body)
            current.start = parse_time(s.group(1)) if s else None
        elif body.startswith("Resource labels:"):
            res = dict(_LABEL.findall(body))
            ns, dep = res.get("k8s.namespace.name", ""), res.get("k8s.deployment.name", "")
            if dep:
                current.entity = format_entity(ns, "deployment", dep)
            current.attributes.update({f"resource.{k}": v for k, v in res.items()})
            in_attrs = False
        elif body.startswith("Attributes:"):
            in_attrs = True
        elif body.startswith("Events:"):
            in_attrs = False
        elif in_attrs and ": " in body:
            k, v = body.split(": ", 1)
            current.attributes[k.strip()] = v.strip()
    return spans
