"""Every custom metric IncidentFox exports, declared once (``ray.util.metrics``).

Handlers import the accessor functions below and never declare metrics themselves. Metrics are
created lazily in the process that first records them, and only when that process is connected to
Ray; elsewhere (unit tests, the standalone config service) recording is a no-op. Label values are
bounded: sources, outcomes, statuses, tool names, providers and models, never ids.

Ray (2.60) exports each as ``ray_<name>``: counters keep their ``_total`` name, histograms add
``_bucket``/``_sum``/``_count``, and Ray adds its own labels (``WorkerId``, ``NodeAddress``,
``SessionName``…). :func:`exported_names` lists what Prometheus sees; ``docs/operations.md``, the
Grafana dashboard and the metrics test use exactly those.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]


@dataclass(frozen=True)
class MetricDef:
    name: str
    kind: str  # counter | gauge | histogram
    description: str
    tag_keys: tuple[str, ...] = ()
    boundaries: tuple[float, ...] = ()


METRICS: dict[str, MetricDef] = {m.name: m for m in (
    MetricDef("incidentfox_webhooks_total", "counter", "Webhook deliveries by source and outcome.",
              ("source", "outcome")),
    MetricDef("incidentfox_webhook_ack_seconds", "histogram", "Time to acknowledge a webhook.",
              (), tuple(LATENCY_BUCKETS_S)),
    MetricDef("incidentfox_runs_total", "counter", "Runs reaching a terminal status.", ("status",)),
    MetricDef("incidentfox_runs_active", "gauge", "Runs executing in this process (Ray adds WorkerId; sum "
              "over it for the cluster)."),
    MetricDef("incidentfox_run_seconds", "histogram", "Run duration from start to finish.",
              (), tuple(LATENCY_BUCKETS_S)),
    MetricDef("incidentfox_tool_call_seconds", "histogram", "Tool call duration.", ("tool", "status"),
              tuple(LATENCY_BUCKETS_S)),
    MetricDef("incidentfox_sandbox_sessions_active", "gauge", "Live sandbox sessions in this process."),
    MetricDef("incidentfox_llm_tokens_total", "counter", "LLM tokens used.", ("provider", "model", "kind")),
)}

EXPORT_PREFIX = "ray_"


def exported_names() -> dict[str, list[str]]:
    """Declared name → the series names Ray's Prometheus endpoint exports for it."""
    out = {}
    for d in METRICS.values():
        base = EXPORT_PREFIX + d.name
        out[d.name] = [base + s for s in ("_bucket", "_sum", "_count")] if d.kind == "histogram" else [base]
    return out


_lock = threading.Lock()
_objects: dict[str, Any] = {}


def _ray_connected() -> bool:
    try:
        import ray

        return ray.is_initialized()
    except Exception:  # noqa: BLE001 - ray import failure means "not connected"
        return False


def _get(name: str) -> Any | None:
    obj = _objects.get(name)
    if obj is not None:
        return obj
    if not _ray_connected():
        return None
    from ray.util import metrics as rm

    d = METRICS[name]
    with _lock:
        obj = _objects.get(name)
        if obj is None:
            if d.kind == "counter":
                obj = rm.Counter(d.name, d.description, tag_keys=d.tag_keys)
            elif d.kind == "gauge":
                obj = rm.Gauge(d.name, d.description, tag_keys=d.tag_keys)
            else:
                obj = rm.Histogram(d.name, d.description, boundaries=list(d.boundaries), tag_keys=d.tag_keys)
            _objects[name] = obj
    return obj


def inc(name: str, value: float = 1.0, **tags: str) -> None:
    obj = _get(name)
    if obj is not None:
        obj.inc(value, tags={k: str(v) for k, v in tags.items()} or None)


def observe(name: str, value: float, **tags: str) -> None:
    obj = _get(name)
    if obj is not None:
        obj.observe(value, tags={k: str(v) for k, v in tags.items()} or None)


def set_gauge(name: str, value: float, **tags: str) -> None:
    obj = _get(name)
    if obj is not None:
        obj.set(value, tags={k: str(v) for k, v in tags.items()} or None)


def record_llm_tokens(*, provider: str, model: str, input_tokens: int | None, output_tokens: int | None) -> None:
    """Count one model call's (or one agent run's) tokens under ``incidentfox_llm_tokens_total``."""
    for kind, n in (("input", input_tokens), ("output", output_tokens)):
        if n:
            inc("incidentfox_llm_tokens_total", float(n), provider=provider, model=model, kind=kind)
