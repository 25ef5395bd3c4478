"""The provider-neutral evidence model: what tools gather and what the ranker reads.

Every investigation tool (live integration, demo world or a recorded bundle) returns its findings
as a partial :class:`EvidenceBundle`; the offline planner merges the partials and ranks suspects
over the merged bundle. Recorded datasets (PetShop, HolmesGPT) are adapted into the same shape, so
one planner code path runs on live and recorded evidence.

Entities are named ``namespace/kind/name`` for Kubernetes objects where known, else a service name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Alert(BaseModel):
    title: str = ""
    entity: str = ""                 # the alerting node/service, if the alert names one
    metric: str = ""                 # e.g. "latency", "availability", "error_rate"
    started_at: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    text: str = ""                   # untrusted: shown to models only as delimited data


class TopologyEdge(BaseModel):
    """One caller → callee edge of the call graph (:mod:`actors.ranking.topology` merges them)."""

    caller: str
    callee: str
    calls: float = 0.0               # calls seen in the window (0: unknown)
    errors: float = 0.0              # failed calls among them (0: none or unknown)
    sources: list[str] = Field(default_factory=list)   # where the edge was seen: traces, service_graph, istio, demo…


class MetricSeries(BaseModel):
    entity: str
    metric: str                      # e.g. "latency", "error_rate", "requests", "cpu"
    statistic: str = ""              # e.g. "p99", "Average", "Sum"
    unit: str = ""
    timestamps: list[float] = Field(default_factory=list)   # unix seconds
    values: list[float] = Field(default_factory=list)
    baseline: bool = False           # True: normal-operation data for comparison


class K8sEvent(BaseModel):
    namespace: str = ""
    kind: str = ""
    name: str = ""
    type: str = "Normal"             # Normal | Warning
    reason: str = ""
    message: str = ""
    count: int = 1
    at: datetime | None = None


class ObjectState(BaseModel):
    """A Kubernetes object's (or cloud resource's) observed state."""

    namespace: str = ""
    kind: str = ""
    name: str = ""
    status: str = ""                 # e.g. Running, Pending, Failed, Complete
    ready: str = ""                  # e.g. "0/1" for pods, "1/3" for deployments
    restarts: int = 0
    reasons: list[str] = Field(default_factory=list)   # OOMKilled, CrashLoopBackOff, ImagePullBackOff…
    image: str = ""
    message: str = ""
    owner: str = ""                  # e.g. "deployment/checkout"
    extra: dict[str, Any] = Field(default_factory=dict)


class LogLine(BaseModel):
    entity: str
    text: str
    level: str = ""
    at: datetime | None = None


class ChangeEvent(BaseModel):
    entity: str
    kind: str = "deploy"             # deploy | config | commit | pull_request | rollback
    description: str = ""
    at: datetime | None = None
    author: str = ""
    ref: str = ""                    # sha, PR url, revision
    repo: str = ""                   # GitHub owner/name the change is in ("" when not from GitHub)
    sha: str = ""                    # the commit a revert undoes: the commit's, a merged PR's merge commit


class TraceSpan(BaseModel):
    """One span of a distributed trace (Tempo, Jaeger, X-Ray…): who did what, for how long."""

    trace_id: str
    span_id: str
    parent_id: str = ""              # "" for the root span
    entity: str                      # the service that ran the span (namespace/kind/name where known)
    name: str = ""                   # operation, e.g. "postgres.query", "/api/checkout"
    start: datetime | None = None
    duration_ms: float = 0.0
    status: str = ""                 # "error" | "ok" | "" (the provider did not say)
    attributes: dict[str, str] = Field(default_factory=dict)   # e.g. db.system, db.statement, http.url


class EvidenceBundle(BaseModel):
    alert: Alert = Field(default_factory=Alert)
    topology: list[TopologyEdge] = Field(default_factory=list)
    metrics: list[MetricSeries] = Field(default_factory=list)
    events: list[K8sEvent] = Field(default_factory=list)
    objects: list[ObjectState] = Field(default_factory=list)
    logs: list[LogLine] = Field(default_factory=list)
    changes: list[ChangeEvent] = Field(default_factory=list)
    spans: list[TraceSpan] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)   # free-form findings (e.g. "no tools configured")

    def merge(self, other: EvidenceBundle) -> EvidenceBundle:
        """A new bundle with ``other``'s evidence appended; ``other``'s alert wins where set."""
        alert = other.alert if (other.alert.title or other.alert.entity) else self.alert
        return EvidenceBundle(
            alert=alert,
            topology=[*self.topology, *other.topology],
            metrics=[*self.metrics, *other.metrics],
            events=[*self.events, *other.events],
            objects=[*self.objects, *other.objects],
            logs=[*self.logs, *other.logs],
            changes=[*self.changes, *other.changes],
            spans=[*self.spans, *other.spans],
            notes=[*self.notes, *other.notes],
        )
