"""Parse a recorded Robusta finding (``fetch_finding_by_id``, YAML or JSON) into evidence.

A finding names a subject (``subject_namespace``/``subject_type``/``subject_name``) and carries
``evidence`` enrichments whose ``data`` is a JSON list of blocks: markdown and tables. Tables with
``reason/type/time/message`` headers are Kubernetes events (the markdown before them may name the
pod: ``**Pod events for <pod>:**``); ``label/value`` tables are facts (crash info, pending-pod
info). The finding's description becomes a note.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import yaml

from evaluation.recordings.kubectl import unescape
from incidentfox.evidence import EvidenceBundle, K8sEvent, ObjectState

_POD_EVENTS = re.compile(r"Pod events for ([\w.-]+)")


def _blocks(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [b for b in data if isinstance(b, dict)]
    if not isinstance(data, str):
        return []
    for candidate in (data, data.replace('\\"', '"')):
        try:
            doc = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        return [b for b in doc if isinstance(b, dict)] if isinstance(doc, list) else []
    return []


def _load(text: str) -> dict[str, Any]:
    for loader in (json.loads, yaml.safe_load):
        try:
            doc = loader(text)
        except (json.JSONDecodeError, yaml.YAMLError):
            continue
        if isinstance(doc, dict):
            return doc
    return {}


def _ms(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value) / 1000, UTC) if isinstance(value, int | float) and value > 1e11 else None


def parse_finding(text: str) -> EvidenceBundle:
    doc = _load(text)
    if not doc:
        return EvidenceBundle()
    ns = str(doc.get("subject_namespace") or "")
    kind = str(doc.get("subject_type") or "").lower()
    name = str(doc.get("subject_name") or "")
    events: list[K8sEvent] = []
    objects: list[ObjectState] = []
    notes: list[str] = []
    if doc.get("description"):
        notes.append(f"finding: {' '.join(unescape(str(doc['description'])).split())}")
    for ev in doc.get("evidence") or []:
        if not isinstance(ev, dict):
            continue
        enrichment = str(ev.get("enrichment_type") or "")
        target_kind, target = kind, name
        for block in _blocks(ev.get("data")):
            if block.get("type") == "markdown":
                m = _POD_EVENTS.search(str(block.get("data", "")))
                if m:
                    target_kind, target = "pod", m.group(1)
                continue
            table = block.get("data") if block.get("type") == "table" else None
            if not isinstance(table, dict):
                continue
            headers = [str(h).lower() for h in table.get("headers") or []]
            rows = [r for r in table.get("rows") or [] if isinstance(r, list)]
            if {"reason", "message"} <= set(headers):
                for r in rows:
                    cell = dict(zip(headers, r, strict=False))
                    events.append(K8sEvent(namespace=ns, kind=target_kind, name=target,
                                           type=str(cell.get("type") or "Normal"), reason=str(cell["reason"]),
                                           message=str(cell.get("message") or ""), at=_ms(cell.get("time"))))
            elif headers == ["label", "value"]:
                facts = {str(r[0]): r[1] for r in rows if len(r) >= 2}
                _facts(enrichment, facts, ns, kind, name, events, objects)
    return EvidenceBundle(events=events, objects=objects, notes=notes)


def _facts(enrichment: str, facts: dict[str, Any], ns: str, kind: str, name: str,
           events: list[K8sEvent], objects: list[ObjectState]) -> None:
    if enrichment == "pending_pod_info" and facts.get("Reason"):
        events.append(K8sEvent(namespace=ns, kind="pod", name=str(facts.get("Pod") or name), type="Warning",
                               reason="FailedScheduling", message=str(facts["Reason"])))
    elif enrichment == "crash_info" and facts.get("Reason"):
        objects.append(ObjectState(namespace=ns, kind=kind or "pod", name=name, status=str(facts.get("Status", "")),
                                   restarts=int(facts.get("Restarts") or 0), reasons=[str(facts["Reason"])],
                                   extra={"source": "finding", "container": str(facts.get("Container", ""))}))
