"""Rank root-cause suspects over an evidence bundle: the offline planner's decision, documented in
``docs/ranking.md``.

Steps:

1. Every signal turns the bundle into findings (entity, score in ``[0, 1]``, quoted evidence):
   metric anomalies walked over the call graph (:mod:`.propagation`), Kubernetes state
   (:mod:`.k8s_state`), recent changes (:mod:`.changes`), log signatures (:mod:`.logs`),
   traces (:mod:`.traces`) and each service's own saturation or network delay (:mod:`.resources`).
2. **Relevance.** Non-metric findings about entities unrelated to the incident (not the alert's
   subject or its workload, not a call-graph neighbour of it, not an anomalous node, and not the
   cause of one of those: ``details["explains"]``) weigh
   ``UNRELATED``: a namespace listing shows every broken pod, not only the one that paged. A single
   unrelated finding therefore stays below the blame threshold. A resource finding (saturation,
   network delay) about any service the alert's entity depends on, directly or through others, is
   related: a saturated dependency's dependency slows the alerting service too.
   **Explained callers.** When a dependency of an entity (directly or through others, on the call
   graph) has a resource finding of its own (saturation, network delay), that entity's other
   findings (its latency, its share of trace time) are symptoms of it and weigh ``EXPLAINED`` (a
   network delay blamed on CPU-starved callers explains nothing); an
   entity's own resource findings keep their score, so the entry service is blamed when it is the
   one saturated, and only then.
3. **Grouping.** Findings about one workload (a deployment, its replicasets and pods, a job and
   its pods, and the service of that name in the call graph) form one suspect, named after the
   call-graph service, else the workload object, else the entity with the strongest finding.
4. **Score.** Per signal the strongest finding counts; signals combine by noisy-OR,
   ``1 - Π(1 - s)``, so independent signals agreeing (a deploy, then errors, then latency) raise a
   suspect above any single one.
5. **Confidence** is the score, discounted when the runner-up is close:
   ``score · (0.6 + 0.4 · (1 - next/score))``, and never above the confidence of a higher-ranked
   suspect.
6. **No incident** (:mod:`.no_incident`): when nothing stands out the ranking blames nothing.
"""

from __future__ import annotations

from datetime import datetime

from actors.ranking.anomaly import Scorer, analyze
from actors.ranking.changes import change_findings
from actors.ranking.entities import neighbours, parse_entity, related, same_workload, workload_key
from actors.ranking.k8s_state import k8s_findings
from actors.ranking.logs import log_findings
from actors.ranking.model import PROPAGATION, RESOURCE, Finding, Ranking, Suspect
from actors.ranking.no_incident import decide, heartbeat_note
from actors.ranking.propagation import propagation_findings
from actors.ranking.resources import resource_findings
from actors.ranking.traces import trace_findings
from incidentfox.evidence import EvidenceBundle

UNRELATED = 0.3        # so unrelated evidence alone never reaches the blame threshold (0.3)
CORROBORATES = 0.3      # a non-metric finding this strong corroborates cross-metric anomalies
WORKLOAD_KINDS = frozenset({"deployment", "statefulset", "daemonset", "job", "cronjob"})
MAX_SUSPECTS = 10
EXPLAINED = 0.5   # a caller's symptoms, when one of its dependencies is saturated or delayed


def _relevance(findings: list[Finding], anchors: list[str], bundle: EvidenceBundle) -> list[Finding]:
    if not anchors:
        return findings
    adj = neighbours((e.caller, e.callee) for e in bundle.topology)
    below = _dependencies(bundle.alert.entity, bundle)
    out = []
    for f in findings:
        # A finding that explains another entity (a claim that keeps a pod pending) is as related
        # as what it explains.
        about = [f.entity, *f.details.get("explains", [])]
        if f.signal == RESOURCE and f.entity in below:
            pass
        elif f.signal != PROPAGATION and not any(related(e, a, adj) for e in about for a in anchors):
            f = f.model_copy(update={"score": round(f.score * UNRELATED, 4),
                                     "details": {**f.details, "unrelated_to_alert": True}})
        out.append(f)
    return out


def _explained_callers(findings: list[Finding], bundle: EvidenceBundle) -> list[Finding]:
    causes = {f.entity for f in findings if f.signal == RESOURCE and not f.details.get("saturated_callers")}
    if not causes:
        return findings
    out = []
    for f in findings:
        if f.signal != RESOURCE and (_dependencies(f.entity, bundle) - {f.entity}) & causes:
            f = f.model_copy(update={"score": round(f.score * EXPLAINED, 4),
                                     "details": {**f.details, "explained_by_dependency": True}})
        out.append(f)
    return out


def _dependencies(entity: str, bundle: EvidenceBundle) -> set[str]:
    """Every service ``entity`` calls, directly or through others (caller → callee edges)."""
    down: dict[str, set[str]] = {}
    for e in bundle.topology:
        down.setdefault(e.caller, set()).add(e.callee)
    seen: set[str] = set()
    todo = [entity] if entity else []
    while todo:
        for c in down.get(todo.pop(), ()):
            if c not in seen:
                seen.add(c)
                todo.append(c)
    return seen


def _groups(findings: list[Finding]) -> list[list[Finding]]:
    entities = list(dict.fromkeys(f.entity for f in findings))
    parent = {e: e for e in entities}

    def root(e: str) -> str:
        while parent[e] != e:
            parent[e] = parent[parent[e]]
            e = parent[e]
        return e

    for i, a in enumerate(entities):
        for b in entities[i + 1:]:
            if same_workload(a, b) or (workload_key(a) == workload_key(b) and "/" in workload_key(a)):
                parent[root(b)] = root(a)
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(root(f.entity), []).append(f)
    return list(groups.values())


def _name(group: list[Finding], topology: set[str]) -> str:
    """Name a suspect after its workload where the group has one: a call-graph service, else a
    workload object (deployment, job…), else the entity of the strongest finding."""
    entities = list(dict.fromkeys(f.entity for f in group))
    for e in entities:
        if e in topology:
            return e
    for e in entities:
        if parse_entity(e).kind in WORKLOAD_KINDS:
            return e
    return entities[0]


def _suspect(group: list[Finding], topology: set[str]) -> Suspect:
    group = sorted(group, key=lambda f: -f.score)
    best: dict[str, float] = {}
    for f in group:
        best[f.signal] = max(best.get(f.signal, 0.0), f.score)
    miss = 1.0
    for s in best.values():
        miss *= 1 - s
    signals = list(best)
    for f in group:
        for extra in f.details.get("signals", []):
            if extra not in signals:
                signals.append(extra)
    evidence = []
    for f in group:
        for e in f.evidence:
            if e.quote not in {x.quote for x in evidence}:
                evidence.append(e)
    entity = _name(group, topology)
    return Suspect(entity=entity, score=round(min(0.99, 1 - miss), 4), confidence=0.0, signals=signals,
                   findings=group, evidence=evidence[:8],
                   related=sorted({f.entity for f in group} - {entity}))


def rank(bundle: EvidenceBundle, *, now: datetime | None = None) -> Ranking:
    """Ordered suspects with their evidence, or ``no_incident`` when nothing stands out.

    ``now`` stands in for the alert's start when the alert carries none (live investigations).
    """
    if bundle.alert.started_at is None and now is not None:
        bundle = bundle.model_copy(update={"alert": bundle.alert.model_copy(update={"started_at": now})})
    scorer = Scorer(bundle)     # each series scored once for the anomaly view and the resource findings
    view = analyze(bundle, scorer)
    others = [
        *k8s_findings(bundle),
        *change_findings(bundle.changes, bundle.alert.started_at),
        *log_findings(bundle.logs, bundle.alert),
        *trace_findings(bundle.spans, bundle.alert),
        *resource_findings(bundle, scorer),
    ]
    implicated = {f.entity for f in others if f.score >= CORROBORATES}

    def corroborated(entity: str) -> bool:
        return any(same_workload(entity, e) for e in implicated)

    findings = [*propagation_findings(bundle, view, corroborated=corroborated), *others]
    anomalous = list(view.anomalous()) if view.confirmed is not False else []
    anchors = [a for a in [bundle.alert.entity, *anomalous] if a]
    findings = _relevance(findings, anchors, bundle)
    findings = _explained_callers(findings, bundle)
    topology = {e.caller for e in bundle.topology} | {e.callee for e in bundle.topology}
    suspects = sorted((_suspect(g, topology) for g in _groups(findings)), key=lambda s: (-s.score, s.entity))
    for i, s in enumerate(suspects):
        nxt = suspects[i + 1].score if i + 1 < len(suspects) else 0.0
        separation = 1 - nxt / s.score if s.score > 0 else 0.0
        s.confidence = round(s.score * (0.6 + 0.4 * separation), 4)
        if i:   # never more confident in a lower-ranked suspect
            s.confidence = min(s.confidence, suspects[i - 1].confidence)
    no_incident, reason = decide(bundle, view, suspects)
    notes = [n for n in [heartbeat_note(bundle)] if n]
    affected = [bundle.alert.entity] if bundle.alert.entity else []
    for f in findings:
        for e in f.details.get("explains", []):
            if e not in affected:
                affected.append(e)
    return Ranking(alert=bundle.alert, suspects=[] if no_incident else suspects[:MAX_SUSPECTS],
                   no_incident=no_incident, reason=reason, affected=affected, notes=notes)
