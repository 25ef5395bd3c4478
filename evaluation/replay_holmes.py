"""HolmesGPT recordings as replay recordings for our own tools (:mod:`actors.tools.replay`).

A HolmesGPT case stores what *its* tools answered (kubectl describe/get/events/logs, Tempo traces,
Prometheus queries…). Each recording is parsed by what its output is
(:func:`evaluation.holmesgpt.recording_evidence`, never by case name) and the evidence is filed
under the tool of ours that returns that kind of evidence, matched on the parameters that tool
takes:

* pods, deployments, nodes, services, jobs, persistent volume claims (from describe and get tables)
  → ``kubernetes_list_pods`` / ``kubernetes_list_deployments`` / ``kubernetes_list_nodes`` /
  ``kubernetes_list_services`` / ``kubernetes_list_jobs`` / ``kubernetes_list_volume_claims``, one answer for all namespaces (``match: {namespace: null}``) and one per
  namespace;
* events (events tables and the Events section of describe) → ``kubernetes_get_events`` (same);
* a described pod (``kubectl describe pod``: its containers' states, last states, exit codes,
  restarts, requests and limits, its conditions and events) → ``kubernetes_describe_pod`` matched on
  ``{namespace, pod}``, in the live tool's result shape
  (:func:`actors.tools.kubernetes_describe.describe_result`);
* pod logs → ``kubernetes_get_pod_logs`` matched on ``{namespace, pod}``, and for previous-container
  recordings ``{namespace, pod, previous: true}`` (a kubectl error is not logs: no recording);
* trace spans → ``tempo_search_traces`` (``match`` empty);
* Prometheus results → ``prometheus_query_range`` matched on the recorded ``query``;
* Argo CD applications (``argocd app get`` / ``app list``) → ``argocd_list_applications``, one
  answer (the most detailed state of each application: ``app get`` over ``app list``);
* RabbitMQ node states (a cluster-status recording, with the warnings its nodes raise) →
  ``rabbitmq_cluster_status``.

What has no tool of ours to answer it is left out and listed (:attr:`CaseReplay.unserved`): objects
of other kinds (statefulsets…), Robusta findings, configuration-change metadata, runbook pages, and
outputs no parser reads (tools of systems we have no tool for, e.g. Argo CD or RabbitMQ). The team is
given Kubernetes (every case investigates a cluster) plus the integrations of the other tools that
have recordings (Tempo, Prometheus), as a team with those systems would be.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from actors.tools.base import ToolResult
from actors.tools.kubernetes_describe import describe_result
from actors.tools.replay import ReplayStore, recording
from evaluation.holmesgpt import HolmesCase, described_pod, read_recording, recording_evidence
from incidentfox.evidence import EvidenceBundle, ObjectState

LIST_TOOLS = {"pod": "kubernetes_list_pods", "deployment": "kubernetes_list_deployments",
              "node": "kubernetes_list_nodes", "service": "kubernetes_list_services",
              "job": "kubernetes_list_jobs", "persistentvolumeclaim": "kubernetes_list_volume_claims"}
APPS_TOOL = "argocd_list_applications"   # GitOps applications: one answer, whatever the name asked
BROKER_NODE, BROKER_TOOL = "RabbitMQNode", "rabbitmq_cluster_status"
DESCRIBE_TOOL = "kubernetes_describe_pod"
_PREVIOUS = ("kubectl_previous_logs", "kubectl_previous_logs_all_containers")


@dataclass
class CaseReplay:
    recordings: list[dict[str, Any]] = field(default_factory=list)
    unserved: list[str] = field(default_factory=list)      # "tool: what" with no tool of ours to serve it
    integrations: dict[str, Any] = field(default_factory=dict)

    def store(self) -> ReplayStore:
        return ReplayStore.from_records(self.recordings)


def _scoped(tool: str, by_ns: dict[str, EvidenceBundle], summary: str) -> list[dict[str, Any]]:
    """One answer for all namespaces (``namespace`` null) plus one per namespace; a call for a
    namespace nothing was recorded in matches neither."""
    everything = EvidenceBundle()
    for part in by_ns.values():
        everything = everything.merge(part)
    every = {} if tool == LIST_TOOLS["node"] else {"namespace": None}   # nodes have no namespace
    out = [recording(tool, every, ToolResult.success(None, evidence=everything, summary=summary),
                     match_keys=list(every))]
    for ns, part in sorted(by_ns.items()):
        if ns:
            out.append(recording(tool, {"namespace": ns}, ToolResult.success(None, evidence=part, summary=summary)))
    return out


def case_replay(case: HolmesCase) -> CaseReplay:
    """The replay recordings for one case (in memory), plus what could not be served."""
    objects: dict[str, dict[str, EvidenceBundle]] = defaultdict(lambda: defaultdict(EvidenceBundle))
    events: dict[str, EvidenceBundle] = defaultdict(EvidenceBundle)
    logs: dict[tuple[str, str, bool], EvidenceBundle] = {}
    spans = EvidenceBundle()
    apps: list[ObjectState] = []
    out = CaseReplay()
    for path in sorted(case.path.glob("*.txt")):
        rec = read_recording(path)
        if rec is None:
            continue
        ev = recording_evidence(rec)
        if (pod := described_pod(rec)) is not None:
            state, pod_events = pod
            out.recordings.append(recording(DESCRIBE_TOOL, {"namespace": state.namespace, "pod": state.name},
                                            describe_result(state, pod_events)))
        if any(o.kind == BROKER_NODE for o in ev.objects):   # broker health: its own tool, events and all
            out.recordings.append(recording(BROKER_TOOL, {}, ToolResult.success(
                None, evidence=ev, summary=f"{len(ev.objects)} RabbitMQ nodes"), match_keys=()))
            out.integrations["rabbitmq"] = {"enabled": True}
            continue
        if ev == EvidenceBundle() and rec.status != "error" and rec.output.strip() and \
                f"{rec.tool}: output no parser of ours reads" not in out.unserved:
            out.unserved.append(f"{rec.tool}: output no parser of ours reads")
        for obj in ev.objects:
            kind = obj.kind.lower()
            if kind == "application":
                apps.append(obj)
            elif kind in LIST_TOOLS:
                objects[kind][obj.namespace] = objects[kind][obj.namespace].merge(EvidenceBundle(objects=[obj]))
            else:
                out.unserved.append(f"{rec.tool}: {kind or 'object'} {obj.name}")
        for e in ev.events:
            events[e.namespace] = events[e.namespace].merge(EvidenceBundle(events=[e]))
        if ev.logs:
            ns, pod = rec.params.get("namespace", ""), rec.params.get("pod_name") or rec.params.get("name", "")
            if ns and pod and pod != "*":
                key = (ns, pod, rec.tool in _PREVIOUS)
                logs[key] = logs.get(key, EvidenceBundle()).merge(EvidenceBundle(logs=ev.logs))
            else:
                out.unserved.append(f"{rec.tool}: logs of every pod in {ns or 'the cluster'}")
        if ev.spans:
            spans = spans.merge(EvidenceBundle(spans=ev.spans))
        if ev.metrics:
            q = str(rec.params.get("query", ""))
            out.recordings.append(recording("prometheus_query_range", {"query": q},
                                            ToolResult.success(None, evidence=EvidenceBundle(metrics=ev.metrics),
                                                               summary=f"{len(ev.metrics)} series")))
            out.integrations["prometheus"] = {"enabled": True}
        if ev.notes:
            out.unserved.append(f"{rec.tool}: {len(ev.notes)} note(s) (finding description, runbook text)")
        if ev.changes:
            out.unserved.append(f"{rec.tool}: {len(ev.changes)} change(s)")
    for kind, by_ns in objects.items():
        out.recordings += _scoped(LIST_TOOLS[kind], by_ns, f"recorded {kind}s")
    if apps:
        richest: dict[tuple[str, str], ObjectState] = {}
        for o in apps:   # the most detailed recording of each application wins
            key, was = (o.namespace, o.name), richest.get((o.namespace, o.name))
            if was is None or (len(o.message), len(o.extra.get("resources", []))) > \
                    (len(was.message), len(was.extra.get("resources", []))):
                richest[key] = o
        merged = EvidenceBundle(objects=list(richest.values()))
        out.recordings.append(recording(APPS_TOOL, {}, ToolResult.success(
            None, evidence=merged, summary=f"{len(merged.objects)} Argo CD applications"), match_keys=()))
        out.integrations["argocd"] = {"enabled": True}
    if events:
        out.recordings += _scoped("kubernetes_get_events", events, "recorded events")
    for (ns, pod, previous), part in sorted(logs.items()):
        match = {"namespace": ns, "pod": pod, **({"previous": True} if previous else {})}
        out.recordings.append(recording("kubernetes_get_pod_logs", match,
                                        ToolResult.success(None, evidence=part, summary=f"{len(part.logs)} log lines")))
    if spans.spans:
        out.recordings.append(recording("tempo_search_traces", {}, ToolResult.success(
            None, evidence=spans, summary=f"{len(spans.spans)} spans"), match_keys=()))
        out.integrations["tempo"] = {"enabled": True}
    out.integrations["kubernetes"] = {"enabled": True}   # every case is an investigation of a cluster
    return out
