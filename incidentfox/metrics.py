"""Every custom metric IncidentFox exports, declared once as an object (``ray.util.metrics``).

Each metric is a module constant (:data:`RUNS_TOTAL`, :data:`TOOL_CALL_SECONDS`, …) carrying its
name, description, tag keys and, for histograms, bucket boundaries. Callers import the object and
record through it (``metrics.RUNS_TOTAL.inc(status="succeeded")``), so a misspelt metric is an
``AttributeError`` at import time and a misspelt or missing tag key is a ``ValueError`` wherever the
call runs, unit tests included, not a surprise in production.

The ``ray.util.metrics`` object behind each is created lazily in the process that first records
it, and only when that process is connected to Ray; elsewhere (unit tests, the standalone config
service) recording checks its tags and does nothing else. Tag values are bounded: sources,
outcomes, statuses, tool names, providers and models, never ids.

Ray (2.60) exports each as ``ray_<name>``: counters keep their ``_total`` name, histograms add
``_bucket``/``_sum``/``_count``, and Ray adds its own labels (``WorkerId``, ``NodeAddress``,
``SessionName``…). :func:`exported_names` lists what Prometheus sees; ``docs/operations.md``, the
Grafana dashboard and the metrics tests use exactly those.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Any

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
EXPORT_PREFIX = "ray_"


class MetricKind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


def _ray_connected() -> bool:
    try:
        import ray

        return ray.is_initialized()
    except Exception:  # noqa: BLE001 - ray import failure means "not connected"
        return False


class Metric:
    """One declared metric. Use :class:`Counter`, :class:`Gauge` or :class:`Histogram`."""

    kind: MetricKind

    def __init__(self, name: str, description: str, *, tag_keys: tuple[str, ...] = (),
                 boundaries: tuple[float, ...] = ()) -> None:
        self.name = name
        self.description = description
        self.tag_keys = tuple(tag_keys)
        self.boundaries = tuple(boundaries)
        self._lock = threading.Lock()
        self._ray: Any | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def exported(self) -> list[str]:
        """The series names Ray's Prometheus endpoint exports for this metric."""
        base = EXPORT_PREFIX + self.name
        return [base + s for s in ("_bucket", "_sum", "_count")] if self.kind is MetricKind.HISTOGRAM else [base]

    def _tags(self, tags: dict[str, Any]) -> dict[str, str] | None:
        if set(tags) != set(self.tag_keys):
            raise ValueError(f"{self.name} takes the tags {sorted(self.tag_keys)}, got {sorted(tags)}")
        return {k: str(v) for k, v in tags.items()} or None

    def _object(self) -> Any | None:
        """The ``ray.util.metrics`` object, created on first use in a Ray-connected process."""
        if self._ray is not None:
            return self._ray
        if not _ray_connected():
            return None
        from ray.util import metrics as rm

        with self._lock:
            if self._ray is None:
                if self.kind is MetricKind.COUNTER:
                    self._ray = rm.Counter(self.name, self.description, tag_keys=self.tag_keys)
                elif self.kind is MetricKind.GAUGE:
                    self._ray = rm.Gauge(self.name, self.description, tag_keys=self.tag_keys)
                else:
                    self._ray = rm.Histogram(self.name, self.description, boundaries=list(self.boundaries),
                                             tag_keys=self.tag_keys)
        return self._ray


class Counter(Metric):
    kind = MetricKind.COUNTER

    def inc(self, value: float = 1.0, **tags: Any) -> None:
        checked = self._tags(tags)
        obj = self._object()
        if obj is not None:
            obj.inc(value, tags=checked)


class Gauge(Metric):
    kind = MetricKind.GAUGE

    def set(self, value: float, **tags: Any) -> None:
        checked = self._tags(tags)
        obj = self._object()
        if obj is not None:
            obj.set(value, tags=checked)


class Histogram(Metric):
    kind = MetricKind.HISTOGRAM

    def __init__(self, name: str, description: str, *, tag_keys: tuple[str, ...] = (),
                 boundaries: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        super().__init__(name, description, tag_keys=tag_keys, boundaries=boundaries)

    def observe(self, value: float, **tags: Any) -> None:
        checked = self._tags(tags)
        obj = self._object()
        if obj is not None:
            obj.observe(value, tags=checked)


# ----------------------------------------------------------------------------------- declarations
WEBHOOKS_TOTAL = Counter("incidentfox_webhooks_total", "Webhook deliveries by source and outcome.",
                         tag_keys=("source", "outcome"))
WEBHOOK_ACK_SECONDS = Histogram("incidentfox_webhook_ack_seconds", "Time to acknowledge a webhook.")
RUNS_TOTAL = Counter("incidentfox_runs_total", "Runs reaching a terminal status.", tag_keys=("status",))
RUNS_ACTIVE = Gauge("incidentfox_runs_active", "Runs executing in this process (Ray adds WorkerId; sum "
                    "over it for the cluster).")
RUN_SECONDS = Histogram("incidentfox_run_seconds", "Run duration from start to finish.")
TOOL_CALL_SECONDS = Histogram("incidentfox_tool_call_seconds", "Tool call duration.", tag_keys=("tool", "status"))
SANDBOX_SESSIONS_ACTIVE = Gauge("incidentfox_sandbox_sessions_active", "Live sandbox sessions in this process.")
LLM_TOKENS_TOTAL = Counter("incidentfox_llm_tokens_total", "LLM tokens used.", tag_keys=("provider", "model", "kind"))
DELIVERIES_UNDISPATCHED = Gauge("incidentfox_deliveries_undispatched", "Deliveries recorded but not yet "
                                "dispatched past the sweep's grace period, as the last sweep in this process "
                                "saw them (capped at the sweep's batch limit).")
DISPATCH_ATTEMPTS_TOTAL = Counter("incidentfox_dispatch_attempts_total", "Hand-offs of deliveries to a runner: "
                                  "kind first|retry (sweep, redrive), result ok|error.",
                                  tag_keys=("kind", "result"))
REPORT_JOBS_TOTAL = Counter("incidentfox_report_jobs_total", "Scheduled jobs (reports, scheduled "
                            "investigations) finished, by status done|failed|refused.", tag_keys=("status",))
WORKER_GROUP_CHANGES_TOTAL = Counter("incidentfox_worker_group_changes_total", "Teams whose dedicated worker "
                                     "group a reconcile pass changed or failed to change, by outcome "
                                     "provisioned|drained|updated|failed (error: the pass could not run).",
                                     tag_keys=("outcome",))
RATE_LIMITED_TOTAL = Counter("incidentfox_rate_limited_total", "Requests refused with 429 by the inbound rate "
                             "limits: surface api|webhooks, scope token|ip.", tag_keys=("surface", "scope"))

METRICS: dict[str, Metric] = {m.name: m for m in (
    WEBHOOKS_TOTAL, WEBHOOK_ACK_SECONDS, RUNS_TOTAL, RUNS_ACTIVE, RUN_SECONDS, TOOL_CALL_SECONDS,
    SANDBOX_SESSIONS_ACTIVE, LLM_TOKENS_TOTAL, DELIVERIES_UNDISPATCHED, DISPATCH_ATTEMPTS_TOTAL,
    REPORT_JOBS_TOTAL, WORKER_GROUP_CHANGES_TOTAL, RATE_LIMITED_TOTAL,
)}


def exported_names() -> dict[str, list[str]]:
    """Declared name → the series names Ray's Prometheus endpoint exports for it."""
    return {name: m.exported() for name, m in METRICS.items()}


def record_llm_tokens(*, provider: str, model: str, input_tokens: int | None, output_tokens: int | None) -> None:
    """Count one model call's (or one agent run's) tokens under :data:`LLM_TOKENS_TOTAL`."""
    for kind, n in (("input", input_tokens), ("output", output_tokens)):
        if n:
            LLM_TOKENS_TOTAL.inc(float(n), provider=provider, model=model, kind=kind)
