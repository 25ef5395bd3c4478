"""Small pure helpers the backends share to turn provider output into evidence."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from actors.tools.base import ToolResult
from incidentfox.evidence import ChangeEvent, EvidenceBundle, K8sEvent, LogLine
from incidentfox.timeparse import parse_time  # noqa: F401 - the tool backends import it from here

_LEVELS = (
    ("fatal", re.compile(r"\b(FATAL|CRITICAL|PANIC|panic:)\b", re.IGNORECASE)),
    (
        "error",
        re.compile(r"\b(ERROR|ERR|EXCEPTION|Traceback|OutOfMemoryError|failed|failure)\b", re.IGNORECASE),
    ),
    ("warning", re.compile(r"\b(WARN|WARNING)\b", re.IGNORECASE)),
    ("info", re.compile(r"\bINFO\b", re.IGNORECASE)),
    ("debug", re.compile(r"\b(DEBUG|TRACE)\b", re.IGNORECASE)),
)
# Label keys that usually name the service a series/stream belongs to, most specific first.
SERVICE_LABELS = (
    "service",
    "service_name",
    "app",
    "app_kubernetes_io_name",
    "app.kubernetes.io/name",
    "k8s_app",
    "job",
    "container",
    "deployment",
    "pod",
    "instance",
    "host",
)


def detect_level(text: str) -> str:
    """A log level guessed from the line's text (``""`` when nothing matches)."""
    for level, pattern in _LEVELS:
        if pattern.search(text):
            return level
    return ""


def normalise_level(value: Any, text: str = "") -> str:
    """Map provider level names (``Error``, ``err``, ``5``, ``WARN``) onto fatal/error/warning/info/debug."""
    v = str(value or "").strip().lower()
    if v in ("fatal", "critical", "crit", "emergency", "alert", "panic", "6"):
        return "fatal"
    if v in ("error", "err", "5"):
        return "error"
    if v in ("warn", "warning", "4"):
        return "warning"
    if v in ("info", "information", "notice", "3", "ok"):
        return "info"
    if v in ("debug", "trace", "verbose", "1", "2"):
        return "debug"
    return detect_level(text)


def iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def k8s_entity(namespace: str | None, kind: str, name: str) -> str:
    """``namespace/kind/name`` (kind lower-case), or ``kind/name`` for cluster-scoped objects."""
    kind = kind.lower()
    return f"{namespace}/{kind}/{name}" if namespace else f"{kind}/{name}"


def service_from_labels(labels: Mapping[str, Any] | None, default: str = "") -> str:
    """The most specific service-like label value (see :data:`SERVICE_LABELS`)."""
    labels = labels or {}
    for key in SERVICE_LABELS:
        value = labels.get(key)
        if value:
            return str(value)
    return default


def metric_name(query: str, labels: Mapping[str, Any] | None = None) -> str:
    """A short metric name: the ``__name__`` label, else a guess from the query's words."""
    if labels and labels.get("__name__"):
        return str(labels["__name__"])
    q = query.lower()
    for word, name in (
        ("duration", "latency"),
        ("latency", "latency"),
        ("5..", "error_rate"),
        ("error", "error_rate"),
        ("memory", "memory"),
        ("cpu", "cpu"),
        ("connection", "connections"),
        ("request", "requests"),
    ):
        if word in q:
            return name
    return query[:60]


def events_result(events: list[K8sEvent]) -> ToolResult:
    """Kubernetes events as the tools return them (live and demo backends alike): rows for the
    model, the events themselves as evidence, and a one-line summary."""
    data = [{"at": iso(e.at), "type": e.type, "reason": e.reason, "object": f"{e.kind}/{e.name}",
             "namespace": e.namespace, "count": e.count, "message": e.message} for e in events]
    warn = sum(1 for e in events if e.type == "Warning")
    return ToolResult.success(data, evidence=EvidenceBundle(events=events),
                              summary=f"{len(events)} events ({warn} warnings)")


def error_count(lines: list[LogLine]) -> int:
    """How many log lines are at level ``error`` or ``fatal``."""
    return sum(1 for ln in lines if ln.level in ("error", "fatal"))


def logs_result(lines: list[LogLine], summary: str, *, service: bool = True) -> ToolResult:
    """Log lines as the tools return them (live and demo backends alike): one row per line for the
    model (with the line's ``service`` unless ``service=False``, e.g. when all come from one pod),
    the lines themselves as evidence, and the caller's one-line ``summary``."""
    if service:
        data = [{"at": iso(ln.at), "service": ln.entity, "level": ln.level, "text": ln.text} for ln in lines]
    else:
        data = [{"at": iso(ln.at), "level": ln.level, "text": ln.text} for ln in lines]
    return ToolResult.success(data, evidence=EvidenceBundle(logs=lines), summary=summary)


def changes_result(changes: list[ChangeEvent], what: str) -> ToolResult:
    """Change events as the tools return them (live and demo backends alike), in the given order:
    rows for the model, the changes as evidence, and ``"<n> <what>; latest: …"`` as the summary."""
    data = [
        {"service": c.entity, "at": iso(c.at), "description": c.description, "author": c.author, "ref": c.ref}
        for c in changes
    ]
    latest = (
        f"; latest: {changes[0].entity} {changes[0].description} at {iso(changes[0].at)}" if changes else ""
    )
    return ToolResult.success(
        data, evidence=EvidenceBundle(changes=changes), summary=f"{len(changes)} {what}{latest}"
    )
