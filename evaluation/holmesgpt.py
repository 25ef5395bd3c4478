"""HolmesGPT adapter: recorded investigations and questions (robusta-dev/holmesgpt, Apache-2.0).

Two fixture shapes, told apart by their files, read from one folder or from a parent holding
folders of them (:func:`discover_cases`):

* **investigate**: ``investigate_request.json`` (the alert as sent), ``issue_data.json`` (the
  alert's payload) and tool recordings; the case starts from the alert (:func:`case_alert`);
* **ask**: ``test_case.yaml`` whose ``user_prompt`` is a user's question ("what is wrong with pod
  X?") and tool recordings; the case starts from the question, as a Slack mention would
  (:func:`actors.engine.subject.question_alert`). Only ``user_prompt`` is read from that file; its
  expected answer, ``manifest.yaml``, ``helm/`` and setup scripts (how upstream built the live
  incident) are never read.

A tool recording is a ``*.txt`` file: line 1 is JSON naming the tool and its parameters, line 2 a
JSON status header, the rest raw output. Recordings are turned into evidence by what the output
*is* (kubectl describe, get tables, events, pod logs, Robusta findings, Prometheus results, trace
trees), never by the case's name. Labels (what the scorer needs) live in a labels file, not here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from actors.engine.subject import question_alert
from actors.ranking.entities import format_entity
from actors.tools.rabbitmq import node_evidence
from evaluation.recordings import argocd, kubectl
from evaluation.recordings.findings import parse_finding
from evaluation.recordings.prometheus import parse_prometheus
from evaluation.recordings.traces import parse_trace_tree
from incidentfox.evidence import Alert, ChangeEvent, EvidenceBundle, K8sEvent, LogLine, ObjectState
from incidentfox.timeparse import parse_time

_LOG_TOOLS = ("fetch_pod_logs", "kubectl_logs", "kubectl_logs_all_containers", "kubectl_previous_logs",
              "kubectl_previous_logs_all_containers")
_LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal"}
_TEXT_LEVEL = re.compile(r"\b(TRACE|DEBUG|INFO|WARN(?:ING)?|ERROR|FATAL|CRITICAL)\b")


@dataclass(frozen=True)
class Recording:
    path: Path
    tool: str
    params: dict[str, Any]
    status: str
    error: str
    output: str


INVESTIGATE, ASK = "investigate", "ask"


@dataclass(frozen=True)
class HolmesCase:
    name: str
    path: Path
    shape: str = INVESTIGATE        # INVESTIGATE (an alert) or ASK (a user's question)


def case_shape(path: Path) -> str | None:
    """INVESTIGATE, ASK or None (not a case directory)."""
    if (path / "investigate_request.json").is_file():
        return INVESTIGATE
    if (path / "test_case.yaml").is_file() and any(path.glob("*.txt")) and question(path):
        return ASK
    return None


def question(path: Path) -> str:
    """An ask case's question: ``user_prompt`` of its ``test_case.yaml`` (nothing else is read)."""
    try:
        doc = yaml.safe_load((path / "test_case.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return ""
    prompt = doc.get("user_prompt") if isinstance(doc, dict) else None
    return prompt.strip() if isinstance(prompt, str) else ""


def discover_cases(data_dir: Path) -> list[HolmesCase]:
    """Every case directory under ``data_dir``, or under its sub-folders when ``data_dir`` holds
    folders of cases (e.g. ``holmesgpt-investigate/`` and ``holmesgpt-ask/`` side by side); sorted
    by shape, then name."""
    def cases_in(folder: Path) -> list[HolmesCase]:
        return [HolmesCase(p.name, p, shape) for p in sorted(folder.iterdir())
                if p.is_dir() and (shape := case_shape(p))]

    found = cases_in(data_dir)
    if not found:
        found = [c for sub in sorted(data_dir.iterdir()) if sub.is_dir() for c in cases_in(sub)]
    return sorted(found, key=lambda c: (c.shape != INVESTIGATE, c.name))


def read_recording(path: Path) -> Recording | None:
    """Split a tool recording into its three parts; None if it is not one."""
    text = path.read_text(errors="replace")
    lines = text.split("\n", 2)
    if len(lines) < 2:
        return None
    try:
        meta, header = json.loads(lines[0]), json.loads(lines[1])
    except json.JSONDecodeError:
        return None
    params = {**(meta.get("match_params") or {}), **(header.get("params") or {})}
    return Recording(path, str(meta.get("tool_name", "")), params, str(header.get("status", "")),
                     str(header.get("error") or ""), lines[2] if len(lines) > 2 else "")


def _stdout(output: str) -> str:
    """The ``stdout:`` part of an output that wraps it (``stdout:`` … ``stderr:``), else all of it."""
    m = re.search(r"(?ms)^stdout:\n(.*?)(?:^stderr:.*)?\Z", output)
    return m.group(1) if m else output


def _log_line(entity: str, raw: str) -> LogLine | None:
    raw = raw.rstrip()
    if not raw.strip():
        return None
    if raw.startswith("{") and raw.endswith("}"):
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and ("msg" in doc or "message" in doc):
            lvl = doc.get("level")
            level = _LEVELS.get(lvl, str(lvl or "")) if isinstance(lvl, int) else str(lvl or "")
            err = doc.get("err") if isinstance(doc.get("err"), dict) else {}
            text = str(doc.get("msg") or doc.get("message"))
            if err.get("message") and err["message"] not in text:
                text = f"{text}: {err.get('type', 'Error')}: {err['message']}"
            t = doc.get("time")
            at = datetime.fromtimestamp(t / 1000, UTC) if isinstance(t, int | float) and t > 1e11 else None
            return LogLine(entity=entity, text=text, level=level.lower(), at=at)
    m = _TEXT_LEVEL.search(raw[:40])
    return LogLine(entity=entity, text=raw.strip(), level=m.group(1).lower() if m else "")


def _logs(rec: Recording) -> list[LogLine]:
    if rec.status == "error" or re.match(r"Command `kubectl logs .*` failed", rec.output):
        return []   # the tool failed: its output is kubectl's error, not the application's logs
    ns, pod = rec.params.get("namespace", ""), rec.params.get("pod_name") or rec.params.get("name", "")
    entity = format_entity(ns, "pod", pod) if pod and pod != "*" else ns
    return [ln for raw in _stdout(rec.output).splitlines() if (ln := _log_line(entity, raw))]


def _changes(rec: Recording) -> list[ChangeEvent]:
    if rec.status in ("no_data", "error"):
        return []
    try:
        doc = yaml.safe_load(_stdout(rec.output))
    except yaml.YAMLError:
        return []
    items = doc if isinstance(doc, list) else (doc or {}).get("changes", []) if isinstance(doc, dict) else []
    out = []
    for it in items:
        if not isinstance(it, dict):
            continue
        entity = format_entity(it.get("subject_namespace", ""), str(it.get("subject_type") or "").lower(),
                               it.get("subject_name", ""))
        at = it.get("starts_at") or it.get("creation_date")
        out.append(ChangeEvent(entity=entity, kind="config", description=str(it.get("title") or
                               it.get("description") or ""), at=parse_time(at)))
    return out


def recording_evidence(rec: Recording) -> EvidenceBundle:
    """Turn one recording into evidence by the kind of output it holds."""
    tool, p, out = rec.tool, rec.params, rec.output
    ns = p.get("namespace", "")
    if tool == "kubectl_describe":
        objs, events = kubectl.parse_describe(_stdout(out), kind=p.get("kind", ""), namespace=ns)
        return EvidenceBundle(objects=objs, events=events)
    if tool in ("kubectl_get_by_kind_in_namespace", "kubectl_get_by_name", "kubectl_get_all"):
        return EvidenceBundle(objects=kubectl.parse_get_table(_stdout(out), kind=p.get("kind", ""), namespace=ns))
    if tool in ("kubectl_events", "kubectl_get_events"):
        return EvidenceBundle(events=kubectl.parse_events_table(_stdout(out), namespace=ns))
    if tool in _LOG_TOOLS:
        return EvidenceBundle(logs=_logs(rec))
    if tool == "fetch_finding_by_id":
        return parse_finding(_stdout(out))
    if tool == "fetch_tempo_trace_by_id":
        return EvidenceBundle(spans=parse_trace_tree(out, trace_id=str(p.get("trace_id", rec.path.stem))))
    if tool.startswith("execute_prometheus") or "prometheus" in tool:
        return EvidenceBundle(metrics=parse_prometheus(_stdout(out), query=str(p.get("query", ""))))
    if tool == "fetch_configuration_changes_metadata":
        return EvidenceBundle(changes=_changes(rec))
    if tool == "argocd_app_get":
        return EvidenceBundle(objects=argocd.parse_app_get(_stdout(out)))
    if tool == "argocd_app_list":
        return EvidenceBundle(objects=argocd.parse_app_list(_stdout(out)))
    if "rabbitmq" in tool and "cluster_status" in tool:
        return _rabbitmq(out)
    if tool == "fetch_webpage" and out.strip():
        text = " ".join(out.split())
        return EvidenceBundle(notes=[f"runbook {p.get('url', '')}: {text[:600]}"])
    return EvidenceBundle()


def described_pod(rec: Recording) -> tuple[ObjectState, list[K8sEvent]] | None:
    """A ``kubectl describe`` recording of a pod as the live ``kubernetes_describe_pod`` tool sees it
    (:func:`evaluation.recordings.kubectl.parse_describe_pod`); None for any other recording (another
    kind, a failed call, output that describes no pod)."""
    if rec.tool != "kubectl_describe" or rec.status == "error" or \
            str(rec.params.get("kind") or "pod").lower() not in ("pod", "pods", "po"):
        return None
    return kubectl.parse_describe_pod(_stdout(rec.output), namespace=str(rec.params.get("namespace", "")))


def _rabbitmq(output: str) -> EvidenceBundle:
    """A RabbitMQ cluster-status recording: the management API's node objects (``raw_node_data``,
    or the ``data`` list itself) read as :func:`actors.tools.rabbitmq.node_evidence` reads them live."""
    try:
        doc = json.loads(_stdout(output))
    except json.JSONDecodeError:
        return EvidenceBundle()
    data = doc.get("data") if isinstance(doc, dict) else doc
    nodes = data.get("raw_node_data") if isinstance(data, dict) else data
    return node_evidence(nodes) if isinstance(nodes, list) else EvidenceBundle()


def _alert(case_dir: Path) -> Alert:
    req = json.loads((case_dir / "investigate_request.json").read_text())
    issue_path = case_dir / "issue_data.json"
    issue = json.loads(issue_path.read_text()) if issue_path.is_file() else {}
    raw = issue.get("raw") if isinstance(issue.get("raw"), dict) else issue
    labels = {str(k): str(v) for k, v in (raw.get("labels") or {}).items()}
    annotations = raw.get("annotations") or {}
    subject = req.get("subject") or {}
    kind = str(subject.get("kind") or subject.get("subject_type") or "").lower()
    entity = format_entity(subject.get("namespace") or "", kind or "pod", subject["name"]) if subject.get("name") else ""
    title = str(req.get("title") or issue.get("title") or labels.get("alertname", ""))
    parts = [req.get("description"), issue.get("description"), annotations.get("summary"),
             annotations.get("description")]
    text = "\n".join(dict.fromkeys(kubectl.unescape(str(x)).strip() for x in parts if x and str(x).strip()))
    started = parse_time(raw.get("startsAt") or issue.get("starts_at"))
    return Alert(title=title, entity=entity, metric=_metric_of(f"{title} {text}"), started_at=started,
                 labels={**labels, "source": str(req.get("source", ""))}, text=text)


def case_alert(case: HolmesCase) -> Alert:
    """What the investigation is triggered with: the alert (investigate) or the question (ask)."""
    if case.shape == ASK:
        return question_alert(question(case.path))
    return _alert(case.path)


def _metric_of(text: str) -> str:
    t = text.lower()
    if re.search(r"latenc|slow|taking longer|duration|response time", t):
        return "latency"
    if re.search(r"error rate|5xx|errors? ", t):
        return "error_rate"
    return ""
