"""Size bounds for tool output: what a model, a run record and a Ray message can carry.

``bound_data`` trims the largest lists (halving them) and long strings until the JSON encoding fits;
``bound_evidence`` caps each evidence list and down-samples long metric series. Both report whether
anything was cut, so the model is told its view is partial.
"""

from __future__ import annotations

import json
from typing import Any

from incidentfox.evidence import EvidenceBundle, MetricSeries

MAX_DATA_BYTES = 64 * 1024
MAX_STRING_CHARS = 4000
EVIDENCE_CAPS = {
    "logs": 500,
    "events": 500,
    "objects": 500,
    "changes": 200,
    "metrics": 100,
    "topology": 500,
    "spans": 500,
    "notes": 50,
}
MAX_POINTS = 720


def encoded_size(data: Any) -> int:
    return len(json.dumps(data, default=str, separators=(",", ":")).encode())


def _cut_strings(node: Any) -> tuple[Any, bool]:
    if isinstance(node, str) and len(node) > MAX_STRING_CHARS:
        return node[:MAX_STRING_CHARS] + "…[truncated]", True
    if isinstance(node, dict):
        cut = False
        out = {}
        for k, v in node.items():
            out[k], c = _cut_strings(v)
            cut |= c
        return out, cut
    if isinstance(node, list):
        cut = False
        items = []
        for v in node:
            item, c = _cut_strings(v)
            items.append(item)
            cut |= c
        return items, cut
    return node, False


def _largest_list(node: Any, best: tuple[int, list | None] = (0, None)) -> tuple[int, list | None]:
    if isinstance(node, list):
        if len(node) > 1:
            size = encoded_size(node)
            if size > best[0]:
                best = (size, node)
        for v in node:
            best = _largest_list(v, best)
    elif isinstance(node, dict):
        for v in node.values():
            best = _largest_list(v, best)
    return best


def bound_data(data: Any, max_bytes: int = MAX_DATA_BYTES) -> tuple[Any, bool, int]:
    """``(bounded, truncated, size)``: ``data`` cut down until its JSON is at most ``max_bytes``."""
    encoded = json.dumps(data, default=str, separators=(",", ":"))
    if len(encoded) <= max_bytes and len(encoded.encode()) <= max_bytes:
        return json.loads(encoded), False, len(encoded.encode())  # the common case: one pass
    data = json.loads(encoded)  # a JSON-able copy we may cut
    data, truncated = _cut_strings(data)
    size = encoded_size(data)
    for _ in range(64):
        if size <= max_bytes:
            return data, truncated, size
        _, victim = _largest_list(data)
        if victim is None:
            break
        del victim[max(1, len(victim) // 2) :]
        truncated = True
        size = encoded_size(data)
    if size <= max_bytes:
        return data, truncated, size
    text = json.dumps(data, default=str)[: max(0, max_bytes - 64)]
    bounded = {"truncated_json": text}
    return bounded, True, encoded_size(bounded)


def _downsample(series: MetricSeries) -> MetricSeries:
    n = len(series.values)
    if n <= MAX_POINTS:
        return series
    stride = -(-n // MAX_POINTS)
    return series.model_copy(
        update={"timestamps": series.timestamps[::stride], "values": series.values[::stride]}
    )


def bound_evidence(bundle: EvidenceBundle) -> tuple[EvidenceBundle, bool]:
    """``(bounded, truncated)``: each list capped per :data:`EVIDENCE_CAPS`, series down-sampled."""
    updates: dict[str, Any] = {}
    truncated = False
    for name, cap in EVIDENCE_CAPS.items():
        items = getattr(bundle, name)
        if len(items) > cap:
            updates[name] = items[:cap]
            truncated = True
    metrics = updates.get("metrics", bundle.metrics)
    if any(len(s.values) > MAX_POINTS for s in metrics):
        updates["metrics"] = [_downsample(s) for s in metrics]
        truncated = True
    return (bundle.model_copy(update=updates) if updates else bundle), truncated
